"""Ingestion of Shopify orders into ``raw.shopify_orders`` (DESIGN §4.2)."""

import dagster as dg

from e2a_dagster.defs.ingestion.assets import INGEST_TAG, mark_listed
from e2a_dagster.defs.resources import Database, LandingZone, ShopifyShop
from e2a_dagster.lib.ingestion.shopify import ShopifyAuthError, ShopifyConfigError, ShopifyError, pull_orders


@dg.asset(
    key=["raw", "shopify_orders"],
    group_name="ingestion",
    kinds={"python", "postgres"},
    description="Shopify order versions (Admin REST orders.json), once per (shop, order_id, updated_at); pulled "
    "from the committed high-water mark; bad orders and pages go to ops.rejected_records.",
    # Transient trouble (shop or database down) fails the step; the retry resumes at the committed cursor.
    retry_policy=dg.RetryPolicy(max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def shopify_orders(
    context: dg.AssetExecutionContext, database: Database, landing: LandingZone, shopify: ShopifyShop
) -> dg.MaterializeResult:
    try:
        config = shopify.shop_config()
        mark_listed(context, "pull from the committed high-water mark")
        with shopify.client(config) as client:
            result = pull_orders(database.engine, client, tenants=landing.reference().tenants)
    except (ShopifyConfigError, ShopifyAuthError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except ShopifyError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    with database.engine.connect() as conn:
        total = conn.exec_driver_sql(
            "select count(*) from raw.shopify_orders where shop = %s", (config.shop,)
        ).scalar_one()
    context.log.info(f"{config.shop}: {result.as_metadata()}")
    return dg.MaterializeResult(
        metadata={
            **result.as_metadata(),
            "shop": config.shop,
            "tenant_id": config.tenant_id,
            "rejected_by_code": result.reject_codes,
            "dagster/row_count": total,
        }
    )


ingest_shopify_orders_job = dg.define_asset_job(
    "ingest_shopify_orders_job",
    selection=dg.AssetSelection.assets(shopify_orders),
    tags={INGEST_TAG: "shopify"},
    description="Pull Shopify orders updated since the committed high-water mark (requested by shopify_sensor).",
)
