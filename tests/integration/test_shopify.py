"""Shopify source against the real PostgreSQL: the real client against the bundled mock store and a stand-in
server scripted to fail (401, 429 + Retry-After, 500s, a malformed page); the shipped fixture payloads through
ingestion and the dbt staging into ``marts.fct_orders``."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.ingestion.shopify import (
    ShopifyAuthError,
    ShopifyClient,
    ShopifyConfig,
    ShopifyUnavailable,
    fulfillment_records,
    load_documents,
    pull_orders,
    read_cursor,
)
from e2a_dagster.lib.simulator.mock_shopify import OrderStore, RateLimit, ServerThread, create_app
from tests.helpers import write_jsonl

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "shopify"
if not FIXTURES.exists():  # the worktree layout: /work/<worktree>/tests → /work/shared
    FIXTURES = Path("/work/shared/fixtures/shopify")

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _order(order_id: int, minutes: int, **extra) -> dict:
    stamp = (T0 + timedelta(minutes=minutes)).isoformat()
    return {
        "id": order_id,
        "name": f"#{order_id}",
        "created_at": T0.isoformat(),
        "updated_at": stamp,
        "financial_status": "paid",
        "processed_at": T0.isoformat(),
        "line_items": [{"id": 1, "quantity": 2}],
        **extra,
    }


def _config(url: str, **kw) -> ShopifyConfig:
    kw.setdefault("backoff_base", 0.001)
    return ShopifyConfig(shop_url=url, token="shpat_secret_token", tenant_id="acme", **kw)


def _stored(engine, shop: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (r[0], r[1].astimezone(UTC).isoformat())
            for r in conn.execute(
                sa.text("select order_id, updated_at from raw.shopify_orders where shop = :s order by 1, 2"),
                {"s": shop},
            )
        ]


def _rejects(engine, prefix: str) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select location, error_code, error_message, raw, status from ops.rejected_records "
                    "where source = 'shopify' and location like :p order by rejected_id"
                ),
                {"p": prefix + "%"},
            ).mappings()
        ]


# ----------------------------------------------------------------------------------------------------
# The real client against the mock store


def test_pull_from_mock_store_pages_through_rate_limit_and_resumes_from_the_high_water_mark(engine, uid):
    base = 9_100_000_000 + int(uid[:6], 16)
    store = OrderStore()
    store.add([_order(base + i, i) for i in range(5)])
    store.add([_order(base, 30)])  # a second version of the first order
    # A bucket of one call that leaks half a call per request (its clock advances 10 ms per request, not with
    # the wall clock): every second request in a row is refused with 429 and the retry goes through.
    ticks = itertools.count()
    app = create_app(
        store,
        "shpat_secret_token",
        rate_limit=RateLimit(capacity=1, leak_per_second=50, retry_after=0.01, clock=lambda: next(ticks) * 0.01),
    )
    with ServerThread(app) as server:
        client = ShopifyClient(_config(server.url, page_size=2))
        result = pull_orders(engine, client, tenants={"acme"})
        assert (result.pages, result.orders, result.inserted, result.rejected) == (3, 5, 5, 0)
        assert any(reason == "rate limited (HTTP 429)" and wait == 0.01 for reason, wait in client.waits)
        assert read_cursor(engine, server.url).high_water_mark == T0 + timedelta(minutes=30)
        assert read_cursor(engine, server.url).next_page is None

        # New activity: one new order and a new version of another. The overlap re-reads the last version.
        store.add([_order(base + 9, 31), _order(base + 2, 32)])
        again = pull_orders(engine, ShopifyClient(_config(server.url, page_size=2)), tenants={"acme"})
        assert (again.orders, again.inserted, again.duplicates) == (3, 2, 1)
        assert read_cursor(engine, server.url).high_water_mark == T0 + timedelta(minutes=32)

        with pytest.raises(ShopifyAuthError, match="E2A_SHOPIFY_TOKEN") as err:
            ShopifyClient(ShopifyConfig(shop_url=server.url, token="wrong", tenant_id="acme")).get_page(
                client.orders_url(None)
            )
        assert "wrong" not in str(err.value)
    stored = _stored(engine, server.url)
    # The store serves the latest version only: the first order's minute-0 version was never seen.
    assert [oid for oid, _ in stored] == [
        str(base),
        str(base + 1),
        str(base + 2),
        str(base + 2),
        str(base + 3),
        str(base + 4),
        str(base + 9),
    ]


# ----------------------------------------------------------------------------------------------------
# A stand-in server that fails on purpose


class Script:
    """Answers each request with the next scripted response for its page."""

    def __init__(self, responses: dict[str, list[tuple[int, dict, str]]]):
        self.responses = responses
        self.calls: list[str] = []
        self.tokens: list[str | None] = []

    def app(self) -> Starlette:
        async def handler(request: Request) -> Response:
            page = request.query_params.get("page_info", "first")
            self.calls.append(page)
            self.tokens.append(request.headers.get("x-shopify-access-token"))
            queue = self.responses[page]
            status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
            return Response(body, status_code=status, headers=headers, media_type="application/json")

        return Starlette(routes=[Route("/admin/api/{version}/orders.json", handler)])


def _link(server_url: str, page: str) -> dict:
    return {"Link": f'<{server_url}/admin/api/2024-10/orders.json?limit=250&page_info={page}>; rel="next"'}


def test_stand_in_500s_429_malformed_page_and_bad_order_lose_nothing(engine, uid):
    base = 9_200_000_000 + int(uid[:6], 16)
    good = json.dumps({"orders": [_order(base, 1), _order(base + 1, 2)]})
    bad_order = _order(base + 3, 4) | {"updated_at": "2026-03-02T14:04:00"}  # naive timestamp
    last = json.dumps({"orders": [_order(base + 2, 3), bad_order]})
    script = Script({})
    with ServerThread(script.app()) as server:
        script.responses.update(
            {
                "first": [
                    (500, {}, "oops"),
                    (503, {}, "busy"),
                    (429, {"Retry-After": "0.02"}, "{}"),
                    (200, _link(server.url, "p2"), good),
                ],
                "p2": [(200, _link(server.url, "p3"), '{"orders": [{"id": 1, "created_at": ')],
                "p3": [(200, {}, last)],
            }
        )
        client = ShopifyClient(_config(server.url))
        result = pull_orders(engine, client, tenants={"acme"})

    assert script.calls == ["first", "first", "first", "first", "p2", "p3"]
    assert set(script.tokens) == {"shpat_secret_token"}
    assert [reason for reason, _ in client.waits] == [
        "HTTP 500 from the shop",
        "HTTP 503 from the shop",
        "rate limited (HTTP 429)",
    ]
    assert client.waits[2][1] == 0.02  # Retry-After honoured as sent
    assert all(wait < 0.01 for _, wait in client.waits[:2])  # backoff base 0.001 s: tiny waits
    assert (result.inserted, result.rejected, result.malformed_pages) == (3, 2, 1)
    assert [oid for oid, _ in _stored(engine, server.url)] == [str(base), str(base + 1), str(base + 2)]
    rejects = _rejects(engine, server.url)
    assert [r["error_code"] for r in rejects] == ["malformed_page", "naive_timestamp"]
    assert rejects[0]["location"].endswith("page_info=p2") and rejects[0]["raw"].startswith('{"orders": [{"id": 1')
    assert rejects[1]["location"].endswith("page_info=p3#orders[1]")
    assert json.loads(rejects[1]["raw"])["id"] == base + 3
    # The malformed page's orders are unknown: the high-water mark stays, so the next pull covers them again.
    assert read_cursor(engine, server.url).high_water_mark is None


@pytest.mark.parametrize(
    ("status", "match"),
    [(401, "HTTP 401 .* access token was rejected .*E2A_SHOPIFY_TOKEN"), (403, "HTTP 403 .*read_orders")],
)
def test_auth_errors_are_clear_immediate_and_never_show_the_token(engine, status, match):
    script = Script({"first": [(status, {}, '{"errors": "[API] Invalid API key or access token"}')]})
    with ServerThread(script.app()) as server:
        client = ShopifyClient(_config(server.url))
        with pytest.raises(ShopifyAuthError, match=match) as err:
            pull_orders(engine, client, tenants={"acme"})
    assert script.calls == ["first"] and client.waits == []
    assert "shpat_secret_token" not in str(err.value)
    assert read_cursor(engine, server.url).high_water_mark is None


def test_a_shop_that_stays_down_is_transient_not_bad_data(engine):
    script = Script({"first": [(502, {}, "bad gateway")]})
    with ServerThread(script.app()) as server:
        client = ShopifyClient(_config(server.url, max_retries=3))
        with pytest.raises(ShopifyUnavailable, match="after 4 attempts: HTTP 502"):
            pull_orders(engine, client, tenants={"acme"})
        assert len(script.calls) == 4 and len(client.waits) == 3
        assert _rejects(engine, server.url) == []  # not routed to the DLQ
        assert _stored(engine, server.url) == []


# ----------------------------------------------------------------------------------------------------
# The real payloads, through ingestion and dbt


def test_every_fixture_payload_ingests_and_stages_into_fct_orders(
    engine, reference, dbt_seeded, pg_info, tmp_path, uid
):
    docs = {name: (FIXTURES / name).read_text() for name in ("order.json", "orders.json", "orders_full.json")}
    # The three documents are versions of one order with one updated_at: one shop each keeps all of them.
    for prefix, name in (
        ("a-full", "orders_full.json"),
        ("b-page", "orders.json"),
        ("c-single", "order.json"),
    ):
        shop = f"https://{prefix}-{uid}.myshopify.example"
        result = load_documents(engine, [(f"{shop}/fixtures/{name}", docs[name])], shop=shop, tenant_id="acme")
        assert (result.orders, result.inserted, result.rejected) == (1, 1, 0), name

    records = []
    for name in ("fulfillment.json", "fulfillment_event.json"):
        records += fulfillment_records(json.loads((FIXTURES / name).read_text()), "acme")
    path = write_jsonl(tmp_path / f"shopify-fulfillments-{uid}.jsonl", records)
    loaded = ingest_file(engine, path, reference, source="shopify")
    assert (loaded.records, loaded.loaded, loaded.rejected) == (2, 2, 0)

    locations = json.loads((FIXTURES / "locations.json").read_text())["locations"]
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from ops.rejected_records where location like :p"), {"p": f"%{uid}%"}
            ).scalar_one()
            == 0
        )
    assert {str(loc["id"]) for loc in locations} <= {"487838322", "1034478814"}  # mapped in seeds/

    run_dbt(
        [
            "build",
            "--select",
            "stg_landing__order_events stg_shopify__orders int_shopify_order_events_versioned int_orders_milestoned "
            "fct_orders",
            "--exclude",
            "test_type:unit",
        ],
        pg_info,
    )
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text(
                    "select order_id, warehouse_id, carrier, service_level, tracking_number, created_at, paid_at, "
                    "label_printed_at, delivered_at, cancelled_at, units from marts.fct_orders "
                    "where tenant_id = 'acme' and order_id in ('450789469', '2776493818019') order by order_id"
                )
            )
            .mappings()
            .all()
        )
    utc = lambda s: datetime.fromisoformat(s)  # noqa: E731
    assert [dict(r) for r in rows] == [
        {
            "order_id": "2776493818019",
            "warehouse_id": "NJ1",
            "carrier": None,
            "service_level": "ground",
            "tracking_number": None,
            "created_at": None,
            "paid_at": None,
            "label_printed_at": utc("2021-01-25T16:32:23-05:00"),
            "delivered_at": None,
            "cancelled_at": None,
            "units": None,
        },
        # orders_full.json wins the tie on updated_at (shop a-…): partially_refunded counts as paid, the failed
        # fulfillment counts for nothing, "Free Shipping" is ground, 3 line-item units; fulfillment.json's
        # pending fulfillment is its label (carrier "null-company" is a placeholder: none).
        {
            "order_id": "450789469",
            "warehouse_id": "NJ1",
            "carrier": None,
            "service_level": "ground",
            "tracking_number": "1Z2345",
            "created_at": utc("2008-01-10T11:00:00-05:00"),
            "paid_at": utc("2008-01-10T11:00:00-05:00"),
            "label_printed_at": utc("2013-11-01T16:06:08-04:00"),
            "delivered_at": None,
            "cancelled_at": None,
            "units": 3,
        },
    ]


def test_a_shopify_order_carries_its_promise_in_a_note_attribute(engine, dbt_seeded, pg_info, uid):
    """The shop (or the marketplace app that created the order) writes the promise as a note attribute: the
    current version's counts (a later version re-promises); a bad value sends that version to the DLQ."""
    shop = f"https://promise-{uid}.myshopify.example"
    base = 9_300_000_000 + int(uid[:6], 16)
    promised = lambda **kv: [{"name": k, "value": v} for k, v in kv.items()]  # noqa: E731
    first = _order(base, 1, note_attributes=promised(promised_ship_by="2026-03-03"))
    again = _order(
        base,
        30,
        note_attributes=[
            {"name": "gift_message", "value": "Happy birthday"},
            *promised(Promised_Ship_By="2026-03-04T12:00:00-05:00", promised_deliver_by="2026-03-06"),
        ],
    )
    bad = _order(base + 1, 1, note_attributes=promised(promised_deliver_by="end of next week"))
    odd = [_order(base + 2, 1, note_attributes=None), _order(base + 3, 1, note_attributes=[None, "x", {"name": 7}])]
    orders = [first, again, bad, *odd]
    pages = [(f"{shop}/page-{n}", json.dumps({"orders": [order]})) for n, order in enumerate(orders)]
    result = load_documents(engine, pages, shop=shop, tenant_id="acme")
    assert (result.orders, result.inserted, result.rejected) == (5, 4, 1)  # odd notes are the shop's business
    (reject,) = _rejects(engine, shop)
    assert reject["error_code"] == "invalid_timestamp"
    assert reject["error_message"].startswith("note_attributes: promised_deliver_by is not an ISO-8601")

    run_dbt(
        [
            "build",
            "--select",
            "stg_landing__order_events stg_shopify__orders int_shopify_order_events_versioned int_orders_milestoned",
            "--exclude",
            "test_type:unit",
        ],
        pg_info,
    )
    with engine.connect() as conn:
        got = conn.execute(
            sa.text(
                "select promised_ship_by, promised_deliver_by from intermediate.int_orders_milestoned "
                "where tenant_id = 'acme' and order_id = :o"
            ),
            {"o": str(base)},
        ).one()
    # as the shop wrote it (dbt reads both forms: macros/promise_instant.sql)
    assert tuple(got) == ("2026-03-04T12:00:00-05:00", "2026-03-06")
