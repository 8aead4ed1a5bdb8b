"""Property: any permutation and duplication of a simulated event stream (landing events and Shopify order
versions, split over any number of files) yields the same ``marts.fct_orders`` rows as the clean stream.

Hypothesis draws the variants; each is ingested through the real paths under its own order-id namespace, then
one real dbt build computes every variant at once and the rows are compared per namespace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2a_dagster.lib.dbt import run_dbt
from e2a_dagster.lib.ingest import ingest_file
from e2a_dagster.lib.shopify import load_documents
from e2a_dagster.lib.simulator import Simulator
from tests.helpers import write_jsonl

START = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
COLUMNS = (
    "tenant_id, order_id, warehouse_id, carrier, service_level, created_at, paid_at, released_at, "
    "pick_completed_at, pack_completed_at, label_printed_at, handed_to_carrier_at, delivered_at, cancelled_at, "
    "units, cartons, postage, tracking_number, is_cancelled, event_count, last_event_at"
)


def _namespaced(ns: str, records: list[dict], versions: list[dict]) -> tuple[list[dict], list[dict]]:
    """The same stream under another order-id namespace (a digit prefix keeps Shopify ids numeric)."""
    out = [r | {"order_id": ns + r["order_id"], "event_id": ns + r["event_id"]} for r in records]
    return out, [v | {"id": int(ns + str(v["id"]))} for v in versions]


def test_permuted_and_duplicated_streams_give_the_clean_fct_orders(
    engine, reference, dbt_seeded, pg_info, tmp_path, uid
):
    sim = Simulator(reference, seed=4, anomalies=0.0, tag=uid[:6].upper(), shopify_tenant="acme", shopify_share=0.7)
    orders = list(sim.orders(8, START, START + timedelta(days=1)))
    records = [e.record for o in orders for e in o.events]
    versions = [payload for o in orders for _, payload in o.shopify_versions]
    assert records and versions  # both sources are exercised
    shop = f"https://prop-{uid}.myshopify.example"
    namespaces: list[str] = []

    def ingest(ns: str, recs: list[dict], vers: list[dict], files: int) -> None:
        recs, vers = _namespaced(ns, recs, vers)
        size = max(1, -(-len(recs) // files))
        for i in range(0, len(recs), size):
            path = write_jsonl(tmp_path / f"prop-{uid}-{ns}-{i}.jsonl", recs[i : i + size])
            result = ingest_file(engine, path, reference)
            assert result.rejected == 0
        docs = [(f"{shop}/test/{ns}/{i}", json.dumps({"order": v})) for i, v in enumerate(vers)]
        assert load_documents(engine, docs, shop=shop, tenant_id="acme").rejected == 0
        namespaces.append(ns)

    ingest("900", records, versions, 1)  # the clean stream

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        order=st.permutations(range(len(records))),
        dups=st.lists(st.integers(0, len(records) - 1), max_size=len(records)),
        version_order=st.permutations(range(len(versions))),
        version_dups=st.lists(st.integers(0, len(versions) - 1), max_size=4),
        files=st.integers(1, 4),
    )
    def variant(order, dups, version_order, version_dups, files):
        ns = f"9{len(namespaces):02d}"
        recs = [records[i] for i in order] + [records[i] for i in dups]
        vers = [versions[i] for i in version_order] + [versions[i] for i in version_dups]
        ingest(ns, recs, vers, files)

    variant()
    assert len(namespaces) >= 10

    run_dbt(
        [
            "build",
            "--select",
            "stg_landing__order_events stg_shopify__orders stg_shopify__order_events "
            "int_orders_milestoned fct_orders",  # includes the dbt unit test of int_orders_milestoned
        ],
        pg_info,
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"select {COLUMNS} from marts.fct_orders where left(order_id, 3) = any(:ns) "
                "and substr(order_id, 4) = any(:ids) order by order_id"
            ),
            {"ns": namespaces, "ids": sorted({o.order_id for o in orders})},
        ).all()
    by_ns: dict[str, list[tuple]] = {}
    for row in rows:
        by_ns.setdefault(row.order_id[:3], []).append((row.order_id[3:], *row[:1], *row[2:]))
    clean = by_ns["900"]
    assert len(clean) == len(orders)
    assert {o for o, *_ in clean} == {o.order_id for o in orders}
    for ns in namespaces:
        assert by_ns[ns] == clean, f"namespace {ns} differs from the clean stream"
