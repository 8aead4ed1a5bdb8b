"""``shopify_sensor``: a pull run when the shop has orders updated since the committed high-water mark, unless one
is waiting already (it pulls from the mark when it starts: sensors/runs.py)."""

from __future__ import annotations

import os

import dagster as dg

from e2a_dagster.lib.core.database import DatabaseError, make_engine, resolve_connection
from e2a_dagster.lib.core.settings import load_settings
from e2a_dagster.lib.ingestion.shopify import (
    ShopifyAuthError,
    ShopifyClient,
    ShopifyConfig,
    ShopifyConfigError,
    ShopifyError,
    ShopifyUnavailable,
    probe,
)
from sensors import runs


@dg.sensor(
    name="shopify_sensor",
    job_name="ingest_shopify_orders_job",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a Shopify pull when orders were updated since the committed high-water mark.",
)
def shopify_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    try:
        config = ShopifyConfig.from_env(os.environ, max_retries=0, timeout=5.0)
    except ShopifyConfigError as exc:
        return dg.SkipReason(str(exc))
    latest = runs.latest_run(context.instance, "ingest_shopify_orders_job")
    if latest is not None and runs.covers_new_work(latest.dagster_run):
        return dg.SkipReason(f"a pull is waiting: {runs.describe(latest.dagster_run)}")
    try:
        engine = make_engine(resolve_connection(load_settings(), start=False))
    except DatabaseError as exc:
        return dg.SkipReason(f"database not available: {exc}")
    try:
        with ShopifyClient(config) as client:
            decision = probe(engine, client)
    except ShopifyAuthError as exc:
        return dg.SkipReason(f"Shopify refuses the credentials: {exc}")
    except ShopifyUnavailable as exc:
        return dg.SkipReason(f"Shopify is down or unreachable, will try again: {exc}")
    except ShopifyError as exc:
        return dg.SkipReason(f"Shopify request failed: {exc}")
    except Exception as exc:  # database trouble etc.: a readable skip, never a crashed tick
        return dg.SkipReason(f"cannot check Shopify now ({type(exc).__name__}: {exc})")
    finally:
        engine.dispose()
    if decision.run_key is None:
        return dg.SkipReason(decision.reason)
    key = decision.run_key
    # The key follows the high-water mark, which a cancelled or failed pull did not move: ask again under a new one.
    retry = runs.retry_key(latest)
    if retry is not None and latest.dagster_run.tags.get("dagster/run_key", "").startswith(key):
        key = f"{key}:{retry}"
    return dg.RunRequest(run_key=key, tags={"e2a/source": "shopify", "e2a/reason": decision.reason})
