"""The Shopify asset and sensor as Dagster runs them: env-configured, against the mock store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from e2a_dagster.defs.ingestion.shopify import shopify_orders
from e2a_dagster.defs.resources import Database, LandingZone, ShopifyShop
from e2a_dagster.lib.simulator.mock_shopify import OrderStore, ServerThread, create_app
from sensors.shopify import shopify_sensor

T0 = datetime(2026, 5, 11, 14, 0, tzinfo=UTC)


def test_sensor_skips_readably_then_requests_a_run_that_pulls(engine, monkeypatch, uid):
    for name in ("E2A_SHOPIFY_URL", "E2A_SHOPIFY_TOKEN", "E2A_SHOPIFY_TENANT"):
        monkeypatch.delenv(name, raising=False)
    instance = dg.DagsterInstance.ephemeral()  # the sensor looks at the job's latest run before it asks for one
    skip = shopify_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(skip, dg.SkipReason)
    assert skip.skip_message == (
        "Shopify is not configured: set E2A_SHOPIFY_URL, E2A_SHOPIFY_TOKEN, E2A_SHOPIFY_TENANT"
    )

    base = 9_400_000_000 + int(uid[:6], 16)
    store = OrderStore()
    store.add(
        [
            {"id": base + i, "created_at": T0.isoformat(), "updated_at": (T0 + timedelta(minutes=i)).isoformat()}
            for i in range(3)
        ]
    )
    with ServerThread(create_app(store, "tok-e2e")) as server:
        monkeypatch.setenv("E2A_SHOPIFY_URL", server.url)
        monkeypatch.setenv("E2A_SHOPIFY_TOKEN", "wrong")
        monkeypatch.setenv("E2A_SHOPIFY_TENANT", "acme")
        refused = shopify_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(refused, dg.SkipReason) and "HTTP 401" in refused.skip_message
        assert "wrong" not in refused.skip_message

        monkeypatch.setenv("E2A_SHOPIFY_TOKEN", "tok-e2e")
        request = shopify_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(request, dg.RunRequest) and request.run_key.startswith(f"shopify:{server.url}:start:")

        resources = {"database": Database(), "landing": LandingZone(), "shopify": ShopifyShop()}
        result = dg.materialize([shopify_orders], resources=resources)
        assert result.success
        metadata = result.asset_materializations_for_node("raw__shopify_orders")[0].metadata
        assert (metadata["order_versions_loaded"].value, metadata["rejected"].value) == (3, 0)
        assert metadata["high_water_mark"].value == (T0 + timedelta(minutes=2)).isoformat()

        idle = shopify_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(idle, dg.SkipReason) and idle.skip_message.startswith(f"no order updated in {server.url}")

    down = shopify_sensor(dg.build_sensor_context(instance=instance))  # the server is gone
    assert isinstance(down, dg.SkipReason) and "down or unreachable" in down.skip_message


def test_bad_credentials_fail_the_run_without_retries(engine, monkeypatch):
    with ServerThread(create_app(OrderStore(), "right")) as server:
        monkeypatch.setenv("E2A_SHOPIFY_URL", server.url)
        monkeypatch.setenv("E2A_SHOPIFY_TOKEN", "wrong")
        monkeypatch.setenv("E2A_SHOPIFY_TENANT", "acme")
        resources = {"database": Database(), "landing": LandingZone(), "shopify": ShopifyShop()}
        with pytest.raises(dg.Failure, match="HTTP 401"):
            dg.materialize([shopify_orders], resources=resources)
