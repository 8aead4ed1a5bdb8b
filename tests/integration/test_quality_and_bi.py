"""Quality gates, BI roles, KPIs, notifications and the radar report on the real PostgreSQL + dbt + Dagster.

One module fixture ingests a few hand-written orders on Tuesday 2026-08-11 (a date no other test uses), builds
the calendar and the KPI marts (and what they read) once, then every test reads them. Expected values are worked
out by hand in the comments (DESIGN §5, §8: acme = NJ1, America/New_York, EDT, 08:00–18:00, cutoff 14:00, acme
pick 90 business minutes from 2026-06-01; globex = BER1, Europe/Berlin, CEST, 07:00–16:00, cutoff 12:00)."""

import re
import uuid
from collections import Counter
from datetime import UTC, timedelta
from decimal import Decimal

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from e2a_dagster.defs.actions.assets import notifications, sla_radar
from e2a_dagster.defs.quality.checks import order_events_are_well_formed, sla_evaluations_are_consistent
from e2a_dagster.defs.resources import Database, Notifier
from e2a_dagster.defs.sla.assets import warehouse_calendar
from e2a_dagster.lib.actions import notify
from e2a_dagster.lib.core import bi, clock
from e2a_dagster.lib.core.database import ConnectionInfo
from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.quality import suites as quality
from tests.helpers import write_jsonl
from tests.webhook_server import WebhookServer

DAY = "2026-08-11"


def _events(prefix: str) -> list[dict]:
    def ev(order: str, kind: str, at: str, tenant: str = "acme", **extra) -> dict:
        source = "wms" if kind.startswith(("pick", "pack", "carrier_")) else "carrier" if kind == "delivered" else "oms"
        if source == "wms":
            extra.setdefault("warehouse_id", "BER1" if tenant == "globex" else "NJ1")
        return {
            "event_id": f"{prefix}-{order}-{kind}",
            "tenant_id": tenant,
            "source": source,
            "event_type": kind,
            "order_id": f"{prefix}-{order}",
            "occurred_at": at,
            **extra,
        }

    edt, cest = "-04:00", "+02:00"
    return [
        # A1: pick due 09:00+90 = 10:30, done 10:00 (met); pack due 10:00+180 = 13:00, done 11:00 (met);
        # ship due 18:00 (paid before the cutoff), collected 16:00 (met); paid -> carrier 420 min,
        # paid -> delivered (08-13 12:00) 2 d 3 h = 3060 min.
        ev("A1", "order_paid", f"{DAY}T09:00:00{edt}"),
        ev("A1", "pick_completed", f"{DAY}T10:00:00{edt}"),
        ev("A1", "pack_completed", f"{DAY}T11:00:00{edt}"),
        ev("A1", "carrier_pickup", f"{DAY}T16:00:00{edt}", carrier="ups"),
        ev("A1", "delivered", f"2026-08-13T12:00:00{edt}", carrier="ups"),
        # A2: pick done 13:00, 150 min late (major: 60 < 150 <= 240), resolved after 150 min; pack due
        # 13:00+180 = 16:00, done 14:00 (met); collected 17:00 (met); carrier 480 min; delivered 08-14 09:00
        # = 3 d = 4320 min.
        ev("A2", "order_paid", f"{DAY}T09:00:00{edt}"),
        ev("A2", "pick_completed", f"{DAY}T13:00:00{edt}"),
        ev("A2", "pack_completed", f"{DAY}T14:00:00{edt}"),
        ev("A2", "carrier_pickup", f"{DAY}T17:00:00{edt}", carrier="ups"),
        ev("A2", "delivered", f"2026-08-14T09:00:00{edt}", carrier="ups"),
        # A3: paid, never picked: pick (due 10:30) and ship (due 18:00) overdue for months -> critical, open.
        ev("A3", "order_paid", f"{DAY}T09:00:00{edt}"),
        # G1 (globex): pick due 08:00+120 = 10:00, done 09:00; pack due 12:00, done 10:00; ship due 16:00,
        # collected 15:00: all met; paid -> carrier 420 min, not delivered.
        ev("G1", "order_paid", f"{DAY}T08:00:00{cest}", tenant="globex"),
        ev("G1", "pick_completed", f"{DAY}T09:00:00{cest}", tenant="globex"),
        ev("G1", "pack_completed", f"{DAY}T10:00:00{cest}", tenant="globex"),
        ev("G1", "carrier_pickup", f"{DAY}T15:00:00{cest}", tenant="globex", carrier="dhl"),
    ]


@pytest.fixture(scope="module")
def built(engine, pg_info, reference, dbt_seeded, tmp_path_factory):
    prefix = "QB" + uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp("quality-events")
    loaded = ingest_file(engine, write_jsonl(folder / f"{prefix}.jsonl", _events(prefix)), reference)
    assert (loaded.loaded, loaded.rejected) == (15, 0)
    assert dg.materialize([warehouse_calendar], resources={"database": Database()}).success
    run_dbt(["run", "--select", "+tag:kpi", "agg_sla_compliance_daily"], pg_info)  # live: as_of = now
    run_dbt(["test", "--select", "tag:kpi"], pg_info)  # contracts held; keys unique; counts add up
    return prefix


def _rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


# ----------------------------------------------------------------------------------------------------
# KPIs


def test_compliance_by_dimensions(engine, built):
    rows = _rows(
        engine,
        """
        select carrier, due_count, met_count, late_count, overdue_count, compliance_pct
        from marts.agg_sla_compliance_by_dimensions_daily
        where tenant_id = 'acme' and warehouse_id = 'NJ1' and stage = 'pick' and due_local_date = :d
          and service_level = 'ground'
        order by carrier nulls last""",
        d=DAY,
    )
    assert rows == [
        # A1 met, A2 late (both ups)
        {
            "carrier": "ups",
            "due_count": 2,
            "met_count": 1,
            "late_count": 1,
            "overdue_count": 0,
            "compliance_pct": Decimal("50.00"),
        },
        # A3: no carrier yet, overdue
        {
            "carrier": None,
            "due_count": 1,
            "met_count": 0,
            "late_count": 1,
            "overdue_count": 1,
            "compliance_pct": Decimal("0.00"),
        },
    ]


def test_cycle_times_daily_and_weekly(engine, built):
    daily = _rows(
        engine,
        """
        select tenant_id, paid_orders, handed_to_carrier_orders, delivered_orders, p50_minutes_to_carrier,
               p90_minutes_to_carrier, p50_minutes_to_delivery, p90_minutes_to_delivery
        from marts.agg_order_cycle_times_daily where period_start = :d order by tenant_id""",
        d=DAY,
    )
    assert daily == [
        # carrier [420, 480]: p50 450, p90 420 + 0.9 × 60 = 474; delivery [3060, 4320]: p50 3690,
        # p90 3060 + 0.9 × 1260 = 4194
        {
            "tenant_id": "acme",
            "paid_orders": 3,
            "handed_to_carrier_orders": 2,
            "delivered_orders": 2,
            "p50_minutes_to_carrier": Decimal("450.0"),
            "p90_minutes_to_carrier": Decimal("474.0"),
            "p50_minutes_to_delivery": Decimal("3690.0"),
            "p90_minutes_to_delivery": Decimal("4194.0"),
        },
        # one order collected after 420 min, none delivered: no delivery figure (null, not 0)
        {
            "tenant_id": "globex",
            "paid_orders": 1,
            "handed_to_carrier_orders": 1,
            "delivered_orders": 0,
            "p50_minutes_to_carrier": Decimal("420.0"),
            "p90_minutes_to_carrier": Decimal("420.0"),
            "p50_minutes_to_delivery": None,
            "p90_minutes_to_delivery": None,
        },
    ]
    weekly = _rows(
        engine,
        """
        select tenant_id, paid_orders from marts.agg_order_cycle_times_weekly
        where period_start = '2026-08-10' order by tenant_id""",
    )  # the Monday of that ISO week
    assert weekly == [{"tenant_id": "acme", "paid_orders": 3}, {"tenant_id": "globex", "paid_orders": 1}]


def test_exception_counts_and_mean_time_to_resolve(engine, built):
    rows = _rows(
        engine,
        """
        select stage, severity, opened_count, resolved_count, open_count, mean_minutes_to_resolve
        from marts.agg_sla_exceptions_daily
        where tenant_id = 'acme' and warehouse_id = 'NJ1' and opened_local_date = :d
        order by stage, severity""",
        d=DAY,
    )
    assert rows == [
        {
            "stage": "pick",
            "severity": "critical",
            "opened_count": 1,
            "resolved_count": 0,
            "open_count": 1,
            "mean_minutes_to_resolve": None,
        },  # A3: still open, nothing resolved -> null
        {
            "stage": "pick",
            "severity": "major",
            "opened_count": 1,
            "resolved_count": 1,
            "open_count": 0,
            "mean_minutes_to_resolve": Decimal("150.0"),
        },  # A2: due 10:30, picked 13:00
        {
            "stage": "ship",
            "severity": "critical",
            "opened_count": 1,
            "resolved_count": 0,
            "open_count": 1,
            "mean_minutes_to_resolve": None,
        },  # A3
    ]


def test_every_mart_column_is_documented(dbt_manifest):
    import json

    manifest = json.loads(dbt_manifest.read_text())
    missing = [
        f"{node['name']}.{column}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
        for column, spec in node["columns"].items()
        if not spec.get("description", "").strip()
    ]
    undeclared = [
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts" and not node["columns"]
    ]
    assert (missing, undeclared) == ([], [])
    exposures = {e["name"] for e in manifest["exposures"].values()}
    assert {"sla_radar_dashboard", "fulfilment_cycle_times", "sla_radar_report"} <= exposures


# ----------------------------------------------------------------------------------------------------
# BI roles


def _connect(pg_info, role: str, password: str, dbname: str | None = None) -> psycopg.Connection:
    """A BI role's connection as a BI tool makes it: TCP, with the role's password."""
    info = bi.bi_connection(pg_info, role, password)
    assert not info.is_socket and info.password == password
    return psycopg.connect(info.url(dbname=dbname), autocommit=True)


def _denied(conn: psycopg.Connection, sql: str) -> bool:
    try:
        conn.execute(sql)
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
        return True
    return False


def test_bi_roles_read_marts_only_and_tenants_see_their_rows(engine, pg_info, built, tmp_path):
    prefix = built
    passwords = bi.ensure_bi_roles(engine, tmp_path, tenants=["acme", "globex"])
    assert set(passwords) == {"e2a_bi", "e2a_bi_acme", "e2a_bi_globex"}
    secret = tmp_path / "secrets" / "e2a_bi.password"
    assert passwords["e2a_bi"].origin == f"file:{secret}" and secret.stat().st_mode & 0o777 == 0o600

    like = f"{prefix}-%"
    with _connect(pg_info, "e2a_bi", passwords["e2a_bi"].value) as conn:
        tenants = {
            r[0]
            for r in conn.execute("select tenant_id from marts.fct_sla_evaluations where order_id like %s", (like,))
        }
        assert tenants == {"acme", "globex"}
        assert conn.execute("select count(*) from actions.notifications").fetchone()[0] >= 0
        for sql in (
            "select 1 from raw.order_events limit 1",
            "select 1 from ops.rejected_records limit 1",
            "select 1 from staging.stg_landing__order_events limit 1",
            "select 1 from intermediate.int_orders_milestoned limit 1",
            "delete from marts.fct_orders where order_id = 'nope'",
        ):
            assert _denied(conn, sql), sql

    def visible(role: str, relation: str) -> set[str]:
        with _connect(pg_info, role, passwords[role].value) as conn:
            assert _denied(conn, "select 1 from raw.order_events limit 1")
            return {r[0] for r in conn.execute(f"select tenant_id from {relation} where order_id like %s", (like,))}

    for relation in ("marts.fct_sla_evaluations", "marts.fct_sla_exceptions", "marts.fct_orders"):
        assert visible("e2a_bi_acme", relation) == {"acme"}, relation
        assert visible("e2a_bi_globex", relation) == {"globex"}, relation

    # dbt recreates the table: the post-hook puts grants and policies back in the same transaction
    run_dbt(["run", "--select", "agg_order_cycle_times_daily"], pg_info)
    with _connect(pg_info, "e2a_bi_acme", passwords["e2a_bi_acme"].value) as conn:
        rows = conn.execute(
            "select distinct tenant_id from marts.agg_order_cycle_times_daily where period_start = %s", (DAY,)
        ).fetchall()
        assert rows == [("acme",)]
    with _connect(pg_info, "e2a_bi", passwords["e2a_bi"].value) as conn:
        rows = conn.execute(
            "select tenant_id from marts.agg_order_cycle_times_daily where period_start = %s order by 1",
            (DAY,),
        ).fetchall()
        assert rows == [("acme",), ("globex",)]


def _refused(connect) -> str:
    with pytest.raises(psycopg.OperationalError) as info:
        connect().close()
    return str(info.value)


def test_bi_roles_need_their_password_and_get_no_scratch_space(engine, pg_info, built, tmp_path):
    passwords = bi.ensure_bi_roles(engine, tmp_path, tenants=["acme"])
    for role in ("e2a_bi", "e2a_bi_acme"):
        assert "password authentication failed" in _refused(lambda r=role: _connect(pg_info, r, "not-the-password"))
        assert "no password supplied" in _refused(lambda r=role: _connect(pg_info, r, ""))  # asked for one
        with _connect(pg_info, role, passwords[role].value) as conn:
            # read-only by default, and no way around it: no TEMP, no CREATE, even in a read-write transaction
            conn.execute("set default_transaction_read_only = off")
            for sql in (
                "create temporary table scratch (n int)",
                "create table public.scratch (n int)",
                "create table marts.scratch (n int)",
                "create schema scratch",
            ):
                assert _denied(conn, sql), (role, sql)
            assert (
                conn.execute("select has_database_privilege(current_user, current_database(), 'TEMP')").fetchone()[0]
                is False
            )


@pytest.mark.skipif(
    bool(__import__("os").environ.get("E2A_TEST_DATABASE_URL")), reason="the embedded server's own access rules"
)
def test_the_embedded_server_refuses_the_superuser_over_tcp(pg_info, engine, built, tmp_path):
    superuser_tcp = ConnectionInfo("127.0.0.1", pg_info.port, "postgres", "", pg_info.dbname)
    assert "rejects connection" in _refused(lambda: psycopg.connect(superuser_tcp.url(), connect_timeout=5))
    with_password = ConnectionInfo("127.0.0.1", pg_info.port, "postgres", "postgres", pg_info.dbname)
    assert "rejects connection" in _refused(lambda: psycopg.connect(with_password.url(), connect_timeout=5))
    # BI roles reach their database only: not the system databases, where PUBLIC could connect and create
    passwords = bi.ensure_bi_roles(engine, tmp_path)
    for dbname in ("postgres", "template1"):
        message = _refused(lambda d=dbname: _connect(pg_info, "e2a_bi", passwords["e2a_bi"].value, d))
        assert "permission denied for database" in message, dbname


# ----------------------------------------------------------------------------------------------------
# Blocking checks: the downstream asset does not materialize


def _definitions_job(definitions: dg.Definitions, selection: dg.AssetSelection) -> dg.JobDefinition:
    """A job over the real code location's definitions (every asset, check and resource)."""
    job = dg.define_asset_job("quality_gate_test_job", selection=selection)
    return dg.Definitions.merge(definitions, dg.Definitions(jobs=[job])).resolve_job_def("quality_gate_test_job")


def _outcome(result: dg.ExecuteInProcessResult) -> tuple[dict[str, bool], list[str], dict]:
    checks, metadata = {}, {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            checks[evaluation.check_name] = evaluation.passed
            metadata[evaluation.check_name] = evaluation.metadata
    materialized = [e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization]
    return checks, materialized, metadata


def test_typo_batch_blocks_the_dbt_models(engine, built, uid, definitions):
    """A whole file whose event type is misspelt, forced into raw past ingestion's validation: the blocking GX
    check fails and the dbt models downstream of raw/order_events do not run; once the rows are gone they do."""
    file_name = f"{uid}-typo.jsonl"
    # The check reads what was ingested since its last passing run. Other tests share this database (the
    # invoice tests load orders dated 2031, which it rightly flags as implausible): start this test's window
    # now, as if a passing run had just checked everything before this batch.
    with engine.connect() as conn:
        db_now = conn.execute(sa.text("select clock_timestamp()")).scalar_one()
    quality.advance_watermark(
        engine, "order_events_are_well_formed", db_now + quality.WATERMARK_OVERLAP - timedelta(milliseconds=1)
    )
    with engine.begin() as conn:
        for n in range(1, 4):
            conn.execute(
                sa.text("""
                insert into raw.order_events (tenant_id, source, event_id, event_type, order_id, occurred_at,
                                              warehouse_id, payload, file_name, line_number)
                values ('acme', 'wms', :e, 'pick_complted', :o, '2026-08-12T10:00:00-04:00', 'NJ1', '{}', :f, :n)
            """),
                {"e": f"{uid}-{n}", "o": f"TY{uid}-{n}", "f": file_name, "n": n},
            )
    selection = dg.AssetSelection.checks(order_events_are_well_formed) | dg.AssetSelection.assets(
        dg.AssetKey(["staging", "stg_landing__order_events"])
    )
    job = _definitions_job(definitions, selection)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            blocked = job.execute_in_process(instance=instance, raise_on_error=False)
        checks, materialized, metadata = _outcome(blocked)
        assert checks == {"order_events_are_well_formed": False}
        assert materialized == []  # the dbt step never ran
        sample = metadata["order_events_are_well_formed"]["failed_rows_sample"].value
        assert sample.count("pick_complted") == 3 and file_name in sample
        assert metadata["order_events_are_well_formed"]["failed_rows"].value == 3
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("delete from raw.order_events where file_name = :f"), {"f": file_name})
    with dg.DagsterInstance.ephemeral() as instance:
        released = job.execute_in_process(instance=instance, raise_on_error=False)
    checks, materialized, _ = _outcome(released)
    assert checks["order_events_are_well_formed"] is True and all(checks.values())  # + the staging dbt tests
    assert materialized == ["staging/stg_landing__order_events"]


def test_negative_minutes_late_blocks_notifications(engine, built, uid, definitions):
    """A negative minutes_late forced into the mart: the blocking check fails, notifications do not run."""
    order_id = f"NEG{uid}"
    with engine.begin() as conn:
        conn.execute(
            sa.text("""
            insert into marts.fct_sla_evaluations (tenant_id, order_id, stage, warehouse_id, started_at, due_at,
                                                   ended_at, status, minutes_late, severity, as_of, as_of_is_pinned)
            values ('acme', :o, 'pick', 'NJ1', '2026-08-12T13:00:00Z', '2026-08-12T14:30:00Z',
                    '2026-08-12T15:00:00Z', 'late', -5, 'minor', :as_of, false)
        """),
            {"o": order_id, "as_of": clock.now()},
        )
    selection = dg.AssetSelection.checks(sla_evaluations_are_consistent) | dg.AssetSelection.assets(notifications)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            job = _definitions_job(definitions, selection)
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        checks, materialized, metadata = _outcome(result)
        assert checks == {"sla_evaluations_are_consistent": False}
        assert materialized == []
        sample = metadata["sla_evaluations_are_consistent"]["failed_rows_sample"].value
        assert order_id in sample and "expect_column_values_to_be_between(minutes_late)" in sample
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("delete from marts.fct_sla_evaluations where order_id = :o"), {"o": order_id})


def test_sla_evaluation_suite_passes_on_the_built_mart(engine, built):
    outcome = quality.check_sla_evaluations(engine)
    assert (outcome.passed, outcome.failed_rows) == (True, [])
    mine = _rows(engine, "select count(*) as n from marts.fct_sla_evaluations where order_id like :p", p=f"{built}-%")
    assert mine == [{"n": 14}]  # A1, A2, G1: pick, pack, ship, deliver; A3: pick, ship (never picked)
    assert outcome.rows_checked >= 14


# ----------------------------------------------------------------------------------------------------
# Notifications


def test_notifications_retry_on_500_and_never_resend(engine, built):
    prefix = built
    a3 = f"{prefix}-A3"

    def respond(payload: dict, seen: int) -> tuple[int, dict]:
        # the A3 pick message fails twice with a 500 before it is accepted
        if a3 in payload["text"] and "pick" in payload["text"] and seen <= 2:
            return 500, {}
        return 200, {}

    def notifier(url: str) -> Notifier:
        return Notifier(webhook_url=url, backoff_seconds=0.001, min_interval_seconds=0.0, max_per_run=10_000)

    with WebhookServer(respond) as hook:
        first = dg.materialize([notifications], resources={"database": Database(), "notifier": notifier(hook.url)})
        assert first.success
        assert sorted(hook.texts(a3)) == [
            f"Critical SLA breach: acme pick stage of order {a3}",
            f"Critical SLA breach: acme pick stage of order {a3}",
            f"Critical SLA breach: acme pick stage of order {a3}",
            f"Critical SLA breach: acme ship stage of order {a3}",
        ]
        assert len(hook.texts(a3, status=200)) == 2
        posted = len(hook.requests)
        again = dg.materialize([notifications], resources={"database": Database(), "notifier": notifier(hook.url)})
        assert again.success and len(hook.requests) == posted  # nothing new, nothing re-sent
        assert set(Counter(hook.texts(status=200)).values()) == {1}  # every subject delivered exactly once
    rows = _rows(
        engine,
        """
        select message->>'text' as text, status, attempts, response_status from actions.notifications
        where kind = 'sla_exception_critical' and title like :p order by title""",
        p=f"%{a3}",
    )
    assert rows == [
        {
            "text": f"Critical SLA breach: acme pick stage of order {a3}",
            "status": "sent",
            "attempts": 3,
            "response_status": 200,
        },
        {
            "text": f"Critical SLA breach: acme ship stage of order {a3}",
            "status": "sent",
            "attempts": 1,
            "response_status": 200,
        },
    ]
    blocks = _rows(
        engine,
        "select message->'blocks' as b from actions.notifications where title like :p order by title limit 1",
        p=f"%{a3}",
    )[0]["b"]
    assert blocks[0]["type"] == "header" and "*stage*: pick" in blocks[1]["text"]["text"]


def test_notifications_off_records_skipped_and_never_sends_them(engine, built):
    a3 = f"{built}-A3"
    with engine.begin() as conn:  # start this subject over
        conn.execute(sa.text("delete from actions.notifications where title like :p"), {"p": f"%{a3}"})
    result = dg.materialize([notifications], resources={"database": Database(), "notifier": Notifier()})
    assert result.success
    rows = _rows(engine, "select status from actions.notifications where title like :p", p=f"%{a3}")
    assert rows == [{"status": "skipped"}, {"status": "skipped"}]
    with WebhookServer() as hook:
        report = notify.deliver_pending(engine, notify.WebhookClient(hook.url, backoff=0.001, min_interval=0))
        assert hook.texts(a3) == [] and report.failed == 0


# ----------------------------------------------------------------------------------------------------
# Radar report (the asset); the browser rendering is in tests/unit/test_report.py


def test_radar_report_asset_writes_the_page(engine, built, pg_info):
    result = dg.materialize(
        [sla_radar],
        resources={"database": Database()},
        run_config={"ops": {"reports__sla_radar": {"config": {"report_date": "2026-08-12"}}}},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("reports__sla_radar")[0].metadata
    path = metadata["path"].value
    assert path.endswith("reports/sla_radar_2026-08-12.html") and metadata["url"].value.startswith("file://")
    with open(path, encoding="utf-8") as fh:
        html = fh.read()
    # due 2026-08-11: acme pick 3 (A1 met), pack 2 (both met), ship 3 (A1, A2 met); globex pick, pack, ship
    # (all met) -> 8 met of 11 due = 72.7 %
    assert "2026-08-11: 72.7% of 11 due" in html
    # open exceptions opened in the 30 days up to the report date: A3's pick and ship (G1's deliver opens 08-18)
    rows = re.findall(
        r'<tr class="exception" data-exception-id="\w+">\s*<td>(\w+)</td><td>([\w-]+)</td>'
        r'<td>(\w+)</td><td>\w+</td>\s*<td class="\w+">(\w+)</td>',
        html,
    )
    assert rows == [("acme", f"{built}-A3", "pick", "critical"), ("acme", f"{built}-A3", "ship", "critical")]
    assert html.count('<td class="narrative">—</td>') == 2


def test_volume_drop_of_a_whole_file_is_flagged(engine, uid):
    """Tuesdays 09-22 .. 10-13: 10 events a day; Tuesday 10-20: 2 (a file went missing) -> 2 / median 10 = 0.2."""
    from datetime import datetime

    source = f"vol{uid}"
    days = {"2026-09-22": 10, "2026-09-29": 10, "2026-10-06": 10, "2026-10-13": 10, "2026-10-20": 2}
    with engine.begin() as conn:
        for day, count in days.items():
            for n in range(count):
                conn.execute(
                    sa.text("""
                    insert into raw.order_events (tenant_id, source, event_id, event_type, order_id, occurred_at,
                                                  payload, file_name, line_number)
                    values ('acme', :s, :e, 'order_paid', :o, cast(:at as timestamptz), '{}', :f, :n)
                """),
                    {
                        "s": source,
                        "e": f"{day}-{n}",
                        "o": f"V{uid}-{day}-{n}",
                        "at": f"{day}T12:00:00Z",
                        "f": f"{source}-{day}.jsonl",
                        "n": n + 1,
                    },
                )
    try:
        outcome = quality.check_event_volume(engine, None, today=datetime(2026, 11, 28, tzinfo=UTC), sources=[source])
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("delete from raw.order_events where source = :s"), {"s": source})
    assert not outcome.passed
    # judged: 10-06 (2 earlier Tuesdays), 10-13 (3), 10-20 (4); 09-22 and 09-29 have no baseline yet
    assert (outcome.rows_checked, outcome.extra["days_without_baseline"]) == (3, 2)
    assert outcome.failed_rows == [
        {
            "source": source,
            "day": "2026-10-20",
            "events": 2,
            "baseline_median": 10.0,
            "volume_ratio": 0.2,
            "failed": "expect_column_values_to_be_between(volume_ratio)",
        }
    ]


# ----------------------------------------------------------------------------------------------------
# Invoice suites (issue 5 tables do not exist on this branch): scratch tables in a scratch schema


def test_invoice_suites_on_scratch_tables(engine, uid):
    schema = f"scratch_{uid}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
        conn.execute(
            sa.text(f"""
            create table {schema}.fct_invoice_reconciliation as
            select * from (values
                ('acme', 'INV1', 'ORDER_FEE', 'o1', 2.50, 2.50, 0.00, 'matched'),
                ('acme', 'INV1', 'ORDER_FEE', 'o2', 2.75, 2.50, 0.25, 'rate_mismatch'),
                ('acme', 'INV1', 'PICK_UNIT', 'o3', null, 0.70, -0.70, 'unbilled'),
                ('acme', 'INV2', 'ORDER_FEE', 'o4', 5.00, 2.50, 2.00, 'duplicate_charge')
            ) as t(tenant_id, invoice_id, charge_code, order_id, billed_amount, expected_amount, delta_amount,
                   discrepancy_type)""")
        )
        conn.execute(
            sa.text(f"""
            create table {schema}.invoice_adjustments as
            select * from (values
                ('acme', 'INV1', -0.25, 'open'), ('acme', 'INV1', 0.70, 'open'),
                ('acme', 'INV2', -2.50, 'open'), ('acme', 'INV2', -9.99, 'superseded')
            ) as t(tenant_id, invoice_id, amount, status)""")
        )
    try:
        recon = quality.check_invoice_reconciliation(engine, schema)
        # o4: 5.00 - 2.50 = 2.50, not 2.00
        assert not recon.passed
        assert [(r["order_id"], r["failed"]) for r in recon.failed_rows] == [
            ("o4", "expect_column_values_to_be_between(delta_error)")
        ]
        adjustments = quality.check_invoice_adjustments(engine, schema, schema)
        # INV1: -(0.25 - 0.70) = 0.45 = -0.25 + 0.70 balances; INV2: -2.00 expected, -2.50 open -> imbalance
        assert not adjustments.passed
        assert [(r["invoice_id"], r["imbalance"]) for r in adjustments.failed_rows] == [("INV2", pytest.approx(-0.5))]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
