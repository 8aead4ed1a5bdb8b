"""Property (DESIGN §4.1: results depend only on the set of events, never on arrival order): one set of events,
delivered split over several live runs, shuffled and partly re-sent, gives the marts one full build gives.

The set: simulated orders (landing events and Shopify order versions; holds, cancellations, late and out of order
scans). Hypothesis draws how each variant delivers it: a permutation, duplicates, which of the live runs each
record arrives in (one of those runs builds no aggregate), and how many files a run's share is split into. Every
variant lives under its own order-id namespace; so does the reference, delivered whole before the first build.
Each run ingests every variant's share through the real loaders, then a live dbt build of the SLA models (the
live clock pinned by ``E2A_NOW``, not a ``--vars as_of``) and the real narratives flow. Then:

- per namespace, the SLA marts' rows and the current narratives equal the reference's;
- over whole tables, the SLA marts and ``actions.exception_narratives_current`` equal what one full build at the
  same instant gives (row count and md5, bookkeeping columns aside: build stamps, creation times).

All variants share the dbt builds (one per run, not per example), which keeps this around a minute."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2a_dagster.defs.resources import Database
from e2a_dagster.defs.sla.assets import warehouse_calendar
from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.explanations.writer import run_narratives
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.ingestion.shopify import load_documents
from e2a_dagster.lib.simulator.simulator import Simulator
from tests.helpers import write_jsonl

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # Monday; orders over three days
NOW = "2026-05-07T15:30:00+00:00"  # Thursday: some stages done, some running, some overdue, holds open
VARIANTS = 7
SLA_MODELS = "+tag:sla"
# What each live run builds: the second one stops at fct_sla_evaluations, as a run whose aggregate step failed
# or was not selected would; the next build of the aggregate must still come out right.
LIVE_BUILDS = (SLA_MODELS, "+fct_sla_evaluations", SLA_MODELS, SLA_MODELS)
ROUNDS = len(LIVE_BUILDS)
# Per-order marts compared per namespace (columns that name the order are compared with the namespace removed).
ORDER_MARTS = {
    "marts.fct_orders": "order_id",
    "marts.fct_sla_evaluations": "order_id, stage",
    "marts.fct_sla_exceptions": "order_id, stage",
}
WHOLE_MARTS = (
    "marts.fct_orders",
    "marts.fct_sla_evaluations",
    "marts.fct_sla_exceptions",
    "marts.agg_sla_compliance_daily",
)
# Bookkeeping, not results: when and by which build a row was written, what it replaced.
BOOKKEEPING = {"built_at", "previous_warehouse_id", "previous_due_local_date", "previous_built_at", "created_at"}
NARRATIVE_COLUMNS = (
    "order_id, stage, exception_status, severity, label, ops_note, client_note, confidence, generator, status, "
    "status_detail, model, prompt_version, facts::text"
)


def _columns(engine, relation: str) -> list[str]:
    schema, name = relation.split(".")
    with engine.connect() as conn:
        names = conn.execute(
            sa.text(
                "select column_name from information_schema.columns where table_schema = :s and table_name = :t "
                "order by ordinal_position"
            ),
            {"s": schema, "t": name},
        ).scalars()
        return [c for c in names if c not in BOOKKEEPING]


def _fingerprint(engine, relation: str) -> tuple[int, str]:
    """Row count and md5 of a whole relation, bookkeeping columns aside (order independent)."""
    cols = ", ".join(_columns(engine, relation))
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                sa.text(
                    f"select count(*), md5(coalesce(string_agg(r, '|' order by r), '')) "
                    f"from (select cast(row({cols}) as text) as r from {relation}) as rows"
                )
            ).one()
        )


def _namespaced(ns: str, records: list[dict], versions: list[dict]) -> tuple[list[dict], list[dict]]:
    """The same stream under another order-id namespace (a digit prefix keeps Shopify ids numeric)."""
    out = [r | {"order_id": ns + r["order_id"], "event_id": ns + r["event_id"]} for r in records]
    return out, [v | {"id": int(ns + str(v["id"]))} for v in versions]


def test_delivery_order_and_grouping_never_change_the_marts(
    engine, reference, dbt_seeded, pg_info, tmp_path, uid, monkeypatch
):
    monkeypatch.setenv("E2A_NOW", NOW)  # every build below is live, at this instant
    sim = Simulator(reference, seed=22, anomalies=0.6, tag=uid[:6].upper(), shopify_tenant="acme", shopify_share=0.4)
    orders = list(sim.orders(14, START, START + timedelta(days=3)))
    records = [e.record for o in orders for e in o.events]
    versions = [payload for o in orders for _, payload in o.shopify_versions]
    order_ids = sorted({r["order_id"] for r in records} | {str(v["id"]) for v in versions})
    assert records and versions and any(r["event_type"] == "hold_placed" for r in records)
    shop = f"https://order-{uid}.myshopify.example"
    deliveries: dict[str, list[tuple[list[dict], list[dict], int]]] = {}  # ns -> per round: (events, versions, files)

    def deliver(ns: str, recs: list[dict], vers: list[dict], files: int, tag: str) -> None:
        recs, vers = _namespaced(ns, recs, vers)
        size = max(1, -(-len(recs) // files))
        for i in range(0, len(recs), size):
            path = write_jsonl(tmp_path / f"order-{uid}-{ns}-{tag}-{i}.jsonl", recs[i : i + size])
            assert ingest_file(engine, path, reference).rejected == 0
        docs = [(f"{shop}/test/{ns}/{tag}/{i}", json.dumps({"order": v})) for i, v in enumerate(vers)]
        assert load_documents(engine, docs, shop=shop, tenant_id="acme").rejected == 0

    @settings(
        max_examples=VARIANTS,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        order=st.permutations(range(len(records))),
        dups=st.lists(st.integers(0, len(records) - 1), max_size=len(records) // 2),
        rounds=st.lists(st.integers(0, ROUNDS - 1), min_size=2 * len(records), max_size=2 * len(records)),
        version_order=st.permutations(range(len(versions))),
        version_rounds=st.lists(st.integers(0, ROUNDS - 1), min_size=len(versions) + 4, max_size=len(versions) + 4),
        version_dups=st.lists(st.integers(0, len(versions) - 1), max_size=4),
        files=st.integers(1, 3),
    )
    def variant(order, dups, rounds, version_order, version_rounds, version_dups, files):
        recs = [records[i] for i in order] + [records[i] for i in dups]
        vers = [versions[i] for i in version_order] + [versions[i] for i in version_dups]
        plan = [
            (
                [r for r, k in zip(recs, rounds, strict=False) if k == n],
                [v for v, k in zip(vers, version_rounds, strict=False) if k == n],
                files,
            )
            for n in range(ROUNDS)
        ]
        deliveries[f"9{len(deliveries) + 1:02d}"] = plan

    variant()
    assert len(deliveries) == VARIANTS

    # A stage that leaves its compliance day while the aggregate is not built, and keeps being re-evaluated after:
    # order M paid Mon 2026-05-04 09:00 EDT at NJ1, pick due 11:00 that day (120 business minutes), overdue at
    # NOW. Its hold (placed 09:10, never released) arrives in the run that builds no aggregate: the pick clock
    # pauses until NOW (Thu 11:30 EDT) and the 110 minutes left run out Thu 13:20, so the stage moves from Mon
    # 05-04 to Thu 05-07. The next run re-evaluates it (still running); the aggregate must leave Mon 05-04.
    mover = f"MV{uid}"

    def moving(kind: str, at: str) -> dict:
        return {
            "event_id": f"{mover}-{kind}",
            "tenant_id": "acme",
            "source": "oms",
            "event_type": kind,
            "order_id": mover,
            "occurred_at": at,
        }

    first = [moving("order_created", "2026-05-04T08:55:00-04:00"), moving("order_paid", "2026-05-04T09:00:00-04:00")]
    write_jsonl(tmp_path / f"{mover}-0.jsonl", first)
    assert ingest_file(engine, tmp_path / f"{mover}-0.jsonl", reference).loaded == 2

    # The reference: everything at once, then one full build.
    deliver("900", records, versions, 1, "all")
    assert dg.materialize([warehouse_calendar], resources={"database": Database()}).success
    run_dbt(["run", "--select", SLA_MODELS, "--full-refresh"], pg_info)
    run_narratives(engine, None)

    # The variants: ROUNDS live runs, each after that round's deliveries.
    for n, selection in enumerate(LIVE_BUILDS):
        for ns, plan in deliveries.items():
            recs, vers, files = plan[n]
            deliver(ns, recs, vers, files, f"r{n}")
        if selection != SLA_MODELS:
            hold = write_jsonl(tmp_path / f"{mover}-1.jsonl", [moving("hold_placed", "2026-05-04T09:10:00-04:00")])
            assert ingest_file(engine, hold, reference).loaded == 1
        run_dbt(["run", "--select", selection], pg_info)
        run_narratives(engine, None)
    with engine.connect() as conn:
        moved = conn.execute(
            sa.text(
                "select status, due_at, previous_due_local_date from marts.fct_sla_evaluations "
                "where order_id = :o and stage = 'pick'"
            ),
            {"o": mover},
        ).one()
    assert (moved.status, moved.due_at) == ("on_track", datetime(2026, 5, 7, 17, 20, tzinfo=UTC))

    namespaces = ["900", *deliveries]

    def strip(ns: str, value):
        if not isinstance(value, str):
            return value
        for order_id in order_ids:
            value = value.replace(ns + order_id, order_id)
        return value

    def per_namespace(relation: str, key: str) -> dict[str, list[tuple]]:
        cols = ", ".join(c for c in _columns(engine, relation) if c != "exception_id")  # a hash of the order id
        out: dict[str, list[tuple]] = {ns: [] for ns in namespaces}
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"select left(order_id, 3) as ns, {cols} from {relation} "
                    "where left(order_id, 3) = any(:ns) and substr(order_id, 4) = any(:ids) order by " + key
                ),
                {"ns": namespaces, "ids": order_ids},
            ).all()
        for ns, *values in rows:
            out[ns].append(tuple(strip(ns, v) for v in values))
        return {ns: sorted(v, key=repr) for ns, v in out.items()}

    for relation, key in ORDER_MARTS.items():
        by_ns = per_namespace(relation, key)
        assert by_ns["900"], relation
        for ns in deliveries:
            assert by_ns[ns] == by_ns["900"], f"{relation}: namespace {ns} ({deliveries[ns]!r}) differs"

    with engine.connect() as conn:
        narratives = conn.execute(
            sa.text(
                f"select left(order_id, 3), {NARRATIVE_COLUMNS} from actions.exception_narratives_current "
                "where left(order_id, 3) = any(:ns) and substr(order_id, 4) = any(:ids)"
            ),
            {"ns": namespaces, "ids": order_ids},
        ).all()
        exceptions = conn.execute(
            sa.text(
                "select left(order_id, 3), exception_id from marts.fct_sla_exceptions e "
                "join marts.fct_sla_evaluations v using (tenant_id, order_id, stage) "
                "where v.status in ('late', 'overdue', 'at_risk') and left(order_id, 3) = any(:ns) "
                "and substr(order_id, 4) = any(:ids)"
            ),
            {"ns": namespaces, "ids": order_ids},
        ).all()
        stale = conn.execute(
            sa.text(
                "select count(*) from actions.exception_narratives_current n "
                "where left(order_id, 3) = any(:ns) and not exists "
                "(select 1 from marts.fct_sla_exceptions e where e.exception_id = n.exception_id)"
            ),
            {"ns": namespaces},
        ).scalar_one()
    notes: dict[str, list] = {ns: [] for ns in namespaces}
    for ns, *values in narratives:
        notes[ns].append(tuple(strip(ns, v) for v in values))
    assert stale == 0  # a narrative follows its exception
    assert sum(1 for ns, _ in exceptions if ns == "900") == len(notes["900"]) > 0  # one per narrated exception
    for ns in deliveries:
        assert sorted(notes[ns], key=repr) == sorted(notes["900"], key=repr), f"narratives of {ns} differ"

    # Whole tables: the live state equals one full build at the same instant.
    live = {relation: _fingerprint(engine, relation) for relation in WHOLE_MARTS}
    current = _fingerprint(engine, "actions.exception_narratives_current")
    run_dbt(["run", "--select", SLA_MODELS, "--full-refresh"], pg_info)
    full = {relation: _fingerprint(engine, relation) for relation in WHOLE_MARTS}
    assert live == full
    after = run_narratives(engine, None)  # the full build's exceptions: nothing new to say, nothing to retire
    assert (after.written, after.retired) == (0, 0)
    assert _fingerprint(engine, "actions.exception_narratives_current") == current
