"""Daily billing partitions (issue 5): tenant-local days, ranges, tenants, staleness, the 02:00 schedule and
the invoice sensor, through real Dagster runs of the real code location on the real database.

July 2026, a month no other test uses. acme = America/New_York (EDT, -04:00), globex = Europe/Berlin
(CEST, +02:00). Hand-over instants chosen so that the local day and the UTC day differ:
  O1 acme   handed 07-02 21:30 EDT (07-03 01:30 UTC) → local day 07-02
  O2 acme   handed 07-03 10:00 EDT                   → 07-03
  O3 acme   handed 07-03 15:00 EDT, returned 07-08   → order charges 07-03, RETURN_FEE 07-08
  G1 globex handed 07-02 23:30 CEST (21:30 UTC)      → 07-02
  G2 globex handed 07-03 00:30 CEST (07-02 22:30 UTC) → 07-03
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.invoicing.billing import ingest_billing_file
from e2a_dagster.lib.invoicing.billing_periods import stale_days
from tests.invoice_helpers import event, shipped_order, write_events, write_invoice

JULY = ("2026-07-01", "2026-07-31")
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture(scope="module")
def july(engine, reference, dbt_seeded, tmp_path_factory):
    import uuid

    p = f"BP{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("billing-partitions")
    events = []
    events += shipped_order(
        f"{p}-O1",
        paid="2026-07-02T09:00:00-04:00",
        handed="2026-07-02T21:30:00-04:00",
        units=2,
        cartons=1,
        postage="6.00",
    )
    events += shipped_order(
        f"{p}-O2",
        paid="2026-07-03T08:00:00-04:00",
        handed="2026-07-03T10:00:00-04:00",
        units=1,
        cartons=1,
        postage="5.00",
    )
    events += shipped_order(
        f"{p}-O3",
        paid="2026-07-03T09:00:00-04:00",
        handed="2026-07-03T15:00:00-04:00",
        units=1,
        cartons=1,
        postage="5.00",
    )
    events.append(event(f"{p}-O3", "return_received", "wms", "2026-07-08T12:00:00-04:00", warehouse_id="NJ1"))
    events += shipped_order(
        f"{p}-G1",
        paid="2026-07-02T09:00:00+02:00",
        handed="2026-07-02T23:30:00+02:00",
        units=1,
        cartons=1,
        postage="4.00",
        tenant="globex",
        warehouse="BER1",
    )
    events += shipped_order(
        f"{p}-G2",
        paid="2026-07-02T10:00:00+02:00",
        handed="2026-07-03T00:30:00+02:00",
        units=1,
        cartons=1,
        postage="4.00",
        tenant="globex",
        warehouse="BER1",
    )
    loaded = ingest_file(engine, write_events(folder / f"{p}.jsonl", events), reference)
    assert loaded.rejected == 0, loaded.reject_codes
    build_orders()
    return {"p": p, "folder": folder}


def build_orders() -> None:
    """What the 5-minute SLA refresh does for these tests: the SLA marts from the landed events (as_of = now)."""
    run_dbt(["run", "--select", "+fct_orders", "+fct_sla_evaluations", "--exclude", "resource_type:seed", "--quiet"])


def run_job(definitions, selection, start: str, end: str, tenants: list[str] | None, *, request=None):
    """One run of ``selection`` over partition keys [start, end] (or of a schedule/sensor ``request``)."""
    from e2a_dagster.defs.invoicing.billable_activity import BILLABLE_OP

    if request is not None:
        tags, run_config, partition_key = dict(request.tags), request.run_config, request.partition_key
    else:
        tags = {RANGE_START: start, RANGE_END: end} if start != end else {}
        partition_key = start if start == end else None
        run_config = {"ops": {BILLABLE_OP: {"config": {"tenants": tenants or []}}}}
    if selection == "reconcile_invoices_job":
        job = definitions.resolve_job_def("reconcile_invoices_job")
    else:
        job = dg.Definitions.merge(
            definitions, dg.Definitions(jobs=[dg.define_asset_job("billing_partitions_test_job", selection)])
        ).resolve_job_def("billing_partitions_test_job")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config=run_config, tags=tags, partition_key=partition_key, instance=instance
        )
    assert result.success
    return result


def activities(engine, p: str) -> dict[tuple[str, str], str]:
    """{(order, charge code): local activity date} of this module's orders."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                select order_id, charge_code, activity_date, quantity
                from intermediate.int_billable_activities_metered where order_id like :p
                """
            ),
            {"p": f"{p}-%"},
        ).all()
    return {(o.removeprefix(f"{p}-"), c): f"{d.isoformat()} {q.normalize()}" for o, c, d, q in rows}


def refreshed_days(engine, run_id: str | None = None) -> set[tuple[str, str]]:
    """July's (tenant, day) refresh marks, of one run if given (`e2a run` in other tests marks every day)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select tenant_id, activity_date from ops.billable_activity_refreshes "
                "where activity_date between '2026-07-01' and '2026-07-31' "
                "and (cast(:run as text) is null or run_id = :run)"
            ),
            {"run": run_id},
        ).all()
    return {(t, d.isoformat()) for t, d in rows}


def stale_july(engine, tenant: str):
    return stale_days(engine, [tenant], first_day=date(2026, 7, 1), last_day=date(2026, 7, 31))


def test_a_range_run_rebuilds_tenant_local_days_of_the_tenants_asked(engine, july, definitions):
    from e2a_dagster.defs.invoicing.billable_activity import BILLABLE_KEYS, BILLABLE_OP

    p = july["p"]
    selection = dg.AssetSelection.assets(*BILLABLE_KEYS)
    result = run_job(definitions, selection, "2026-07-02", "2026-07-03", ["acme"])

    got = activities(engine, p)
    # acme's 07-02 and 07-03 (local days: O1's hand-over is 07-03 in UTC); not O3's return (07-08), not globex
    assert got == {
        ("O1", "ORDER_FEE"): "2026-07-02 1",
        ("O1", "PICK_UNIT"): "2026-07-02 2",
        ("O1", "PACK_CARTON"): "2026-07-02 1",
        ("O1", "SHIPPING"): "2026-07-02 6",
        ("O2", "ORDER_FEE"): "2026-07-03 1",
        ("O2", "PICK_UNIT"): "2026-07-03 1",
        ("O2", "PACK_CARTON"): "2026-07-03 1",
        ("O2", "SHIPPING"): "2026-07-03 5",
        ("O3", "ORDER_FEE"): "2026-07-03 1",
        ("O3", "PICK_UNIT"): "2026-07-03 1",
        ("O3", "PACK_CARTON"): "2026-07-03 1",
        ("O3", "SHIPPING"): "2026-07-03 5",
    }
    assert refreshed_days(engine, result.run_id) == {("acme", "2026-07-02"), ("acme", "2026-07-03")}
    materializations = result.asset_materializations_for_node(BILLABLE_OP)
    # the metered model and the view it meters from (int_billable_order_charges), each day of the range
    assert {(m.asset_key.path[-1], m.partition) for m in materializations} == {
        (model, day)
        for model in ("int_billable_activities_metered", "int_billable_order_charges")
        for day in ("2026-07-02", "2026-07-03")
    }
    materialization = next(m for m in materializations if m.asset_key.path[-1] == "int_billable_activities_metered")
    assert materialization.metadata["window"].value == "2026-07-02..2026-07-03"
    assert materialization.metadata["tenants"].value == "acme"
    # every activity of acme in the window, this module's twelve at least
    assert materialization.metadata["activities"].value >= 12


def test_a_backfill_of_the_month_for_all_tenants_equals_a_full_build(engine, july, definitions, pg_info):
    from e2a_dagster.defs.invoicing.billable_activity import BILLABLE_KEYS

    p = july["p"]
    result = run_job(definitions, dg.AssetSelection.assets(*BILLABLE_KEYS), *JULY, None)
    partitioned = activities(engine, p)
    assert partitioned[("O3", "RETURN_FEE")] == "2026-07-08 1"
    assert partitioned[("G1", "ORDER_FEE")] == "2026-07-02 1"  # 23:30 CEST
    assert partitioned[("G2", "ORDER_FEE")] == "2026-07-03 1"  # 00:30 CEST = 07-02 in UTC
    assert len(partitioned) == 12 + 1 + 8
    assert refreshed_days(engine, result.run_id) == {
        (tenant, f"2026-07-{day:02d}") for tenant in ("acme", "globex") for day in range(1, 32)
    }

    # The same model without a window (a plain `dbt build`) recomputes every day: the same rows.
    run_dbt(["build", "--select", "int_billable_activities_metered", "--quiet"], pg_info)
    assert activities(engine, p) == partitioned


def test_invoice_and_late_events_make_days_stale_and_the_schedule_and_sensor_refresh_them(
    engine, july, definitions, reference, monkeypatch
):
    p, folder = july["p"], july["folder"]
    assert stale_july(engine, "acme") == []  # the backfill above refreshed every July day

    # An invoice for acme's July arrives: every day of its period is older than the invoice.
    invoice = f"INV-{p}-202607"
    path = write_invoice(
        folder / f"{invoice}.csv",
        invoice,
        JULY,
        [
            ("0001", "ORDER_FEE", f"{p}-O1", "1", "2.50", "2.50"),
            ("0002", "ORDER_FEE", f"{p}-O2", "1", "2.50", "2.50"),
        ],
    )
    assert ingest_billing_file(engine, path, reference).loaded == 2
    (stale,) = stale_july(engine, "acme")
    assert (stale.first_day, stale.last_day, stale.days) == (date(2026, 7, 1), date(2026, 7, 31), 31)
    assert stale.reasons == {"invoice_received": 31} and stale.invoices == (invoice,)

    # The sensor asks for one run over those days (and asks once for the same staleness).
    from e2a_dagster.defs.resources import Database
    from sensors.invoice_received import invoice_received_sensor

    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"database": Database()})
        request = invoice_received_sensor(context)
        again = invoice_received_sensor(dg.build_sensor_context(instance=instance, resources={"database": Database()}))
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key == again.run_key
    assert "acme" in request.run_config["ops"]["billable_activity_daily"]["config"]["tenants"]
    start = request.partition_key or request.tags[RANGE_START]
    end = request.partition_key or request.tags[RANGE_END]
    assert start <= "2026-07-01" and end >= "2026-07-31"
    run_job(definitions, "reconcile_invoices_job", "", "", None, request=request)
    assert stale_july(engine, "acme") == []
    skip = invoice_received_sensor(dg.build_sensor_context(resources={"database": Database()}))
    assert isinstance(skip, dg.SkipReason)

    # Late events: O1 was handed over a day earlier (an earlier pickup scan), O2 was cancelled.
    late = [
        event(
            f"{p}-O1",
            "carrier_pickup",
            "wms",
            "2026-07-01T18:00:00-04:00",
            event_id=f"{p}-O1-early",
            warehouse_id="NJ1",
            carrier="ups",
        ),
        event(f"{p}-O2", "order_cancelled", "oms", "2026-07-05T08:00:00-04:00"),
    ]
    assert ingest_file(engine, write_events(folder / f"{p}-late.jsonl", late), reference).rejected == 0
    build_orders()
    (changed,) = stale_july(engine, "acme")
    # O1's new day (07-01) and its old one (07-02), O2's day (07-03)
    assert changed.reasons == {"activity_changed": 3}
    assert (changed.first_day, changed.last_day) == (date(2026, 7, 1), date(2026, 7, 3))

    # The 02:00 New York schedule of 07-10 asks for the previous local day and the stale days, for acme only.
    from e2a_dagster.defs.invoicing.schedules import schedule_name

    monkeypatch.setenv("E2A_BILLING_START", "2026-07-01")  # other tests' invoices of earlier months
    schedule = definitions.resolve_schedule_def(schedule_name("America/New_York"))
    at = datetime(2026, 7, 10, 2, 0, tzinfo=ZoneInfo("America/New_York"))
    repository = definitions.get_repository_def()
    with dg.build_schedule_context(
        scheduled_execution_time=at, resources={"database": Database()}, repository_def=repository
    ) as ctx:
        nightly = schedule.evaluate_tick(ctx).run_requests
    (req,) = nightly
    assert (req.tags[RANGE_START], req.tags[RANGE_END]) == ("2026-07-01", "2026-07-09")
    assert req.run_config["ops"]["billable_activity_daily"]["config"]["tenants"] == ["acme"]
    # Berlin at the same instant (08:00 there): nothing stale for globex, only its previous local day.
    berlin = definitions.resolve_schedule_def(schedule_name("Europe/Berlin"))
    with dg.build_schedule_context(
        scheduled_execution_time=at, resources={"database": Database()}, repository_def=repository
    ) as ctx:
        (globex_req,) = berlin.evaluate_tick(ctx).run_requests
    assert globex_req.partition_key == "2026-07-09"
    assert globex_req.run_config["ops"]["billable_activity_daily"]["config"]["tenants"] == ["globex"]

    result = run_job(definitions, "reconcile_invoices_job", "", "", None, request=req)
    got = activities(engine, p)
    assert {k: v for k, v in got.items() if k[0] in ("O1", "O2")} == {
        ("O1", "ORDER_FEE"): "2026-07-01 1",
        ("O1", "PICK_UNIT"): "2026-07-01 2",
        ("O1", "PACK_CARTON"): "2026-07-01 1",
        ("O1", "SHIPPING"): "2026-07-01 6",
    }
    assert stale_july(engine, "acme") == []

    # A delivery scan after the invoice: fct_orders rewrites O3 (a newer as_of), what it bills is unchanged.
    delivered = event(f"{p}-O3", "delivered", "carrier", "2026-07-06T12:00:00-04:00", carrier="ups")
    assert ingest_file(engine, write_events(folder / f"{p}-delivered.jsonl", [delivered]), reference).loaded == 1

    def o3_as_of():
        with engine.connect() as conn:
            return conn.execute(
                sa.text("select as_of from marts.fct_orders where order_id = :o"), {"o": f"{p}-O3"}
            ).scalar_one()

    before = o3_as_of()
    later = clock.now() + timedelta(minutes=5)  # the next 5-minute refresh
    monkeypatch.setenv("E2A_NOW", later.isoformat())
    build_orders()
    assert before < o3_as_of() == later
    assert stale_july(engine, "acme") == []

    # The same run reconciled the invoice: O1 matched, O2 (cancelled) billed for nothing, O3 not billed.
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                sa.text(
                    "select order_id, discrepancy_type from marts.fct_invoice_reconciliation "
                    "where invoice_id = :i and charge_code = 'ORDER_FEE'"
                ),
                {"i": invoice},
            ).all()
        )
    assert rows == {f"{p}-O1": "matched", f"{p}-O2": "unexpected_charge", f"{p}-O3": "unbilled"}
    by_asset = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.all_events
        if e.is_step_materialization
    }
    assert "billed_USD" in by_asset["marts/fct_invoice_reconciliation"]
    assert "actions/invoice_adjustments" in by_asset
