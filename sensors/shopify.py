"""``shopify_sensor``: a pull run when the shop has orders updated since the committed high-water mark."""

from __future__ import annotations

import os

import dagster as dg

from e2a_dagster.lib.database import DatabaseError, make_engine, resolve_connection
from e2a_dagster.lib.settings import load_settings
from e2a_dagster.lib.shopify import (
    ShopifyAuthError,
    ShopifyClient,
    ShopifyConfig,
    ShopifyConfigError,
    ShopifyError,
    ShopifyUnavailable,
    probe,
)


@dg.sensor(
    name="shopify_sensor",
    job_name="ingest_shopify_orders_job",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a Shopify pull when orders were updated since the committed high-water mark.",
)
def shopify_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    try:
        config = ShopifyConfig.from_env(os.environ, max_retries=0, timeout=5.0)
    except ShopifyConfigError as exc:
        return dg.SkipReason(str(exc))
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
    return dg.RunRequest(run_key=decision.run_key, tags={"e2a/source": "shopify", "e2a/reason": decision.reason})
