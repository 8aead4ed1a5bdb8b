"""The SLA engine end to end on the real PostgreSQL + dbt (DESIGN §5): events -> calendar -> due times ->
statuses -> exceptions -> compliance. Every expected instant below is worked out by hand from the rules and
the default reference data (DESIGN §8); the comment beside it shows the arithmetic.

One module fixture ingests every case (unique order ids), materializes the calendar through Dagster and runs
three dbt builds: pinned at AS_OF, then live twice (the second one incremental), with the live clock (E2A_NOW)
at LIVE and then five minutes later: time passes by moving the pinned clock, never by waiting."""

import json
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from e2a_dagster.defs.automation import SLA_BUILD_TAGS
from e2a_dagster.defs.resources import Database
from e2a_dagster.defs.sla.assets import warehouse_calendar
from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.ingestion.ingest import ingest_file
from tests.helpers import write_jsonl

AS_OF = "2026-11-20T15:00:00+00:00"  # Friday 10:00 EST
# The live clock of the two live builds: Tuesday 10:00 EST, NJ1 open (an open hold keeps pausing the clock),
# then five minutes later.
LIVE = "2026-11-24T15:00:00+00:00"
LATER = "2026-11-24T15:05:00+00:00"
SELECT = ["--select", "stg_landing__order_events stg_shopify__orders int_shopify_order_events_versioned tag:sla"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class Orders:
    """Builds canonical events for the cases; order ids carry a per-run prefix."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.events: list[dict] = []

    def id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def add(
        self,
        name: str,
        event_type: str,
        at: str,
        *,
        tenant: str = "acme",
        source: str | None = None,
        suffix: str = "",
        **extra,
    ) -> None:
        source = source or (
            "wms"
            if event_type.startswith(("pick", "pack", "label", "carrier_"))
            else "carrier"
            if event_type in ("picked_up", "delivered")
            else "oms"
        )
        if source == "wms":
            extra.setdefault("warehouse_id", "BER1" if tenant == "globex" else "NJ1")
        self.events.append(
            {
                "event_id": f"{self.id(name)}-{event_type}{suffix}",
                "tenant_id": tenant,
                "source": source,
                "event_type": event_type,
                "order_id": self.id(name),
                "occurred_at": at,
                **extra,
            }
        )


def build_cases(o: Orders) -> None:
    # acme = NJ1 (America/New_York, Mon–Fri 08:00–18:00, cutoff 14:00);
    # globex = BER1 (Europe/Berlin 07:00–16:00).
    # acme pick = 120 business minutes before 2026-06-01, 90 from then;
    # pack 180; ship cutoff; deliver transit days.
    o.add("before_open", "order_paid", "2026-03-02T07:00:00-05:00")
    o.add("before_open", "pick_completed", "2026-03-02T09:59:00-05:00")
    o.add("after_close", "order_paid", "2026-03-02T19:00:00-05:00")
    o.add("after_close", "pick_completed", "2026-03-03T10:30:00-05:00")
    o.add("weekend", "order_paid", "2026-03-07T11:00:00-05:00")
    o.add("weekend", "pick_completed", "2026-03-09T10:00:00-04:00")  # exactly at due
    o.add("holiday", "order_paid", "2026-05-25T09:00:00-04:00")  # Memorial Day
    o.add("columbus", "order_paid", "2026-10-12T09:00:00-04:00")  # NJ1 open on Columbus Day (exception)
    o.add("dst_ny", "order_paid", "2026-03-06T17:00:00-05:00")
    o.add("dst_ny", "pick_completed", "2026-03-06T17:30:00-05:00")
    o.add("dst_ny", "pack_completed", "2026-03-09T10:30:00-04:00")
    o.add("dst_ber", "order_paid", "2026-03-27T15:00:00+01:00", tenant="globex")
    o.add("dst_ber", "pick_completed", "2026-03-30T08:00:00+02:00", tenant="globex")  # exactly at due
    o.add("ber_late", "order_paid", "2026-03-30T07:00:00+02:00", tenant="globex")
    o.add("ber_late", "pick_completed", "2026-03-30T10:00:00+02:00", tenant="globex")
    o.add("ber_cancel", "order_paid", "2026-03-30T08:00:00+02:00", tenant="globex")
    o.add("ber_cancel", "order_cancelled", "2026-03-30T08:30:00+02:00", tenant="globex")
    o.add("at_cutoff", "order_paid", "2026-03-03T14:00:00-05:00")
    o.add("at_cutoff", "carrier_pickup", "2026-03-03T17:30:00-05:00")
    o.add("after_cutoff", "order_paid", "2026-03-03T14:01:00-05:00")
    o.add("transit", "order_paid", "2026-03-31T09:00:00-04:00", service_level="express")
    o.add("transit", "carrier_pickup", "2026-04-01T16:00:00-04:00", carrier="ups")
    o.add("transit", "delivered", "2026-04-06T15:00:00-04:00", carrier="ups")
    o.add("before_switch", "order_paid", "2026-05-29T09:00:00-04:00")
    o.add("after_switch", "order_paid", "2026-06-01T09:00:00-04:00")
    o.add("globex_june", "order_paid", "2026-06-01T09:00:00+02:00", tenant="globex")
    o.add("hold", "order_paid", "2026-03-10T09:00:00-04:00")
    o.add("hold", "hold_placed", "2026-03-10T09:30:00-04:00")
    o.add("hold", "hold_released", "2026-03-10T10:00:00-04:00")
    o.add("open_hold", "order_paid", "2026-11-20T08:00:00-05:00")
    o.add("open_hold", "hold_placed", "2026-11-20T08:30:00-05:00")
    o.add("cancelled", "order_paid", "2026-03-02T09:00:00-05:00")
    o.add("cancelled", "order_cancelled", "2026-03-02T09:30:00-05:00")
    o.add("cancel_late", "order_paid", "2026-03-02T09:00:00-05:00")
    o.add("cancel_late", "order_cancelled", "2026-03-03T09:00:00-05:00")
    o.add("overdue", "order_paid", "2026-11-19T15:00:00-05:00")
    o.add("overdue", "pick_completed", "2026-11-20T12:00:00-05:00")  # after AS_OF: lands for the live build
    o.add("at_risk", "order_paid", "2026-11-20T08:45:00-05:00")
    o.add("on_track", "order_paid", "2026-11-20T09:15:00-05:00")
    o.add("earliest", "order_paid", "2026-03-04T09:00:00-05:00")
    o.add("earliest", "picked_up", "2026-03-04T17:50:00-05:00", carrier="ups")
    o.add("earliest", "carrier_pickup", "2026-03-04T18:10:00-05:00", carrier="ups")
    o.add("twice", "order_paid", "2026-03-05T09:00:00-05:00")
    o.add("twice", "pick_completed", "2026-03-05T12:00:00-05:00", source="scanner", suffix="-b")
    o.add("twice", "pick_completed", "2026-03-05T10:30:00-05:00")
    # Odd timeline of a real feed: handed to the carrier at 09:00, an hour before payment was approved.
    o.add("early_pickup", "order_paid", "2026-03-11T10:00:00-04:00")
    o.add("early_pickup", "carrier_pickup", "2026-03-11T09:00:00-04:00", carrier="ups")


def _evaluations(engine, prefix: str) -> dict[tuple[str, str], dict]:
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text("select * from marts.fct_sla_evaluations where order_id like :p"), {"p": prefix + "-%"}
            )
            .mappings()
            .all()
        )
    return {(r["order_id"].removeprefix(prefix + "-"), r["stage"]): dict(r) for r in rows}


def _exceptions(engine, prefix: str) -> dict[tuple[str, str], dict]:
    with engine.connect() as conn:
        rows = (
            conn.execute(sa.text("select * from marts.fct_sla_exceptions where order_id like :p"), {"p": prefix + "-%"})
            .mappings()
            .all()
        )
    return {(r["order_id"].removeprefix(prefix + "-"), r["stage"]): dict(r) for r in rows}


@pytest.fixture(scope="module")
def sla(engine, pg_info, reference, dbt_seeded, tmp_path_factory):
    with pytest.MonkeyPatch.context() as clock:
        return _build_sla(engine, pg_info, reference, tmp_path_factory, clock)


def _build_sla(engine, pg_info, reference, tmp_path_factory, clock: pytest.MonkeyPatch) -> dict:
    prefix = "SLA" + uuid.uuid4().hex[:8]
    orders = Orders(prefix)
    build_cases(orders)
    folder = tmp_path_factory.mktemp("sla-events")
    first = ingest_file(engine, write_jsonl(folder / f"{prefix}-a.jsonl", orders.events), reference)
    assert (first.loaded, first.rejected) == (len(orders.events), 0)
    # The same events again, shuffled (out of order, twice): nothing changes.
    shuffled = orders.events[:]
    random.Random(3).shuffle(shuffled)
    again = ingest_file(engine, write_jsonl(folder / f"{prefix}-b.jsonl", shuffled), reference)
    assert (again.loaded, again.duplicates) == (0, len(orders.events))

    calendar = dg.materialize([warehouse_calendar], resources={"database": Database()})
    assert calendar.success
    run_dbt(["build", *SELECT, "--vars", json.dumps({"as_of": AS_OF})], pg_info)
    pinned = _evaluations(engine, prefix), _exceptions(engine, prefix)
    with engine.connect() as conn:
        compliance = (
            conn.execute(
                sa.text(
                    "select * from marts.agg_sla_compliance_daily"
                    " where tenant_id = 'globex' and warehouse_id = 'BER1' "
                    "and stage = 'pick' and due_local_date = '2026-03-30'"
                )
            )
            .mappings()
            .one()
        )
    clock.setenv("E2A_NOW", LIVE)
    run_dbt(["build", *SELECT], pg_info)  # live: everything recomputed (the previous build was pinned)
    live_full = _evaluations(engine, prefix), _exceptions(engine, prefix)
    clock.setenv("E2A_NOW", LATER)
    run_dbt(["build", *SELECT], pg_info)  # live again, five minutes later: incremental
    live_incremental = _evaluations(engine, prefix), _exceptions(engine, prefix)
    return {
        "pinned": pinned,
        "compliance": dict(compliance),
        "live": live_full,
        "live_incremental": live_incremental,
        "calendar": calendar,
    }


# (order, stage) -> (due_at UTC, status at AS_OF), worked out by hand.
EXPECTED_AT_AS_OF = {
    # Mon 07:00 EST, before opening: starts 08:00, +120 -> 10:00 EST; completed 09:59 -> met
    ("before_open", "pick"): ("2026-03-02T15:00:00+00:00", "met"),
    # Mon 07:00 <= cutoff on a business day -> Monday's close 18:00 EST; not handed over by AS_OF -> overdue
    ("before_open", "ship"): ("2026-03-02T23:00:00+00:00", "overdue"),
    # Mon 19:00 EST, after closing: Tue 08:00 + 120 -> 10:00 EST; completed 10:30 -> late
    ("after_close", "pick"): ("2026-03-03T15:00:00+00:00", "late"),
    # Sat: Mon 08:00 EDT (after the DST change) + 120 -> 10:00 EDT; completed exactly then -> met
    ("weekend", "pick"): ("2026-03-09T14:00:00+00:00", "met"),
    # Memorial Day: Tue 08:00 EDT + 120 -> 10:00 EDT
    ("holiday", "pick"): ("2026-05-26T14:00:00+00:00", "overdue"),
    # Columbus Day, NJ1 open by exception, acme 90 min: 09:00 + 90 -> 10:30 EDT the same day
    ("columbus", "pick"): ("2026-10-12T14:30:00+00:00", "overdue"),
    # Fri 17:00 EST: 60 min Friday, 60 min Monday from 08:00 EDT -> 09:00 EDT (13:00Z, not 14:00Z)
    ("dst_ny", "pick"): ("2026-03-09T13:00:00+00:00", "met"),
    # pack from Fri 17:30 EST: 30 min Friday + 150 Monday from 08:00 EDT -> 10:30 EDT; completed then -> met
    ("dst_ny", "pack"): ("2026-03-09T14:30:00+00:00", "met"),
    # Fri 15:00 CET: 60 min Friday, 60 min Monday from 07:00 CEST -> 08:00 CEST (06:00Z);
    # completed then -> met
    ("dst_ber", "pick"): ("2026-03-30T06:00:00+00:00", "met"),
    ("ber_late", "pick"): ("2026-03-30T07:00:00+00:00", "late"),
    ("ber_cancel", "pick"): ("2026-03-30T08:00:00+00:00", "cancelled"),
    # Paid exactly at the 14:00 cutoff: due at that day's close; handed over 17:30 -> met
    ("at_cutoff", "ship"): ("2026-03-03T23:00:00+00:00", "met"),
    # One minute after the cutoff: the next business day's close
    ("after_cutoff", "ship"): ("2026-03-04T23:00:00+00:00", "overdue"),
    # Picked up Wed 1 Apr, express 2 carrier days: Thu 2 (1), Fri 3 Good Friday skipped, Mon 6 (2)
    # -> 24:00 local of Mon 6 Apr = Tue 7 Apr 00:00 EDT; delivered Mon 15:00 -> met
    ("transit", "deliver"): ("2026-04-07T04:00:00+00:00", "met"),
    # acme before the amendment: default 120 -> 11:00 EDT; from 2026-06-01: acme_pick v2, 90 -> 10:30 EDT
    ("before_switch", "pick"): ("2026-05-29T15:00:00+00:00", "overdue"),
    ("after_switch", "pick"): ("2026-06-01T14:30:00+00:00", "overdue"),
    # globex keeps the default 120: 09:00 + 120 -> 11:00 CEST
    ("globex_june", "pick"): ("2026-06-01T09:00:00+00:00", "overdue"),
    # Hold 09:30-10:00 during pick: 09:00 + 120 + 30 on hold -> 11:30 EDT
    ("hold", "pick"): ("2026-03-10T15:30:00+00:00", "overdue"),
    # Ship: Tuesday close 18:00 EDT + 30 business minutes on hold -> Wed 08:30 EDT
    ("hold", "ship"): ("2026-03-11T12:30:00+00:00", "overdue"),
    # Unreleased hold since 08:30, as_of 10:00 EST: 30 min worked + 90 min on hold
    # -> 08:00 + 90 + 90 = 11:00 EST;
    # without the pause it would be overdue since 09:30
    ("open_hold", "pick"): ("2026-11-20T16:00:00+00:00", "on_track"),
    ("cancelled", "pick"): ("2026-03-02T16:00:00+00:00", "cancelled"),
    ("cancelled", "ship"): ("2026-03-02T23:00:00+00:00", "cancelled"),
    ("cancel_late", "pick"): ("2026-03-02T16:00:00+00:00", "cancelled"),
    # Thu 15:00 EST + 90 -> 16:30 EST; not picked at AS_OF -> overdue by 17 h 30 = 1050 min (critical)
    ("overdue", "pick"): ("2026-11-19T21:30:00+00:00", "overdue"),
    # Thu 15:00 is after the cutoff -> Friday's close 18:00 EST; at risk from 16:00 -> on_track at 10:00
    ("overdue", "ship"): ("2026-11-20T23:00:00+00:00", "on_track"),
    # 08:45 + 90 -> 10:15 EST; at risk from 09:45 -> at_risk at 10:00
    ("at_risk", "pick"): ("2026-11-20T15:15:00+00:00", "at_risk"),
    # 09:15 + 90 -> 10:45 EST; at risk from 10:15 -> on_track at 10:00
    ("on_track", "pick"): ("2026-11-20T15:45:00+00:00", "on_track"),
    # handed_to_carrier = earliest of picked_up 17:50 and carrier_pickup 18:10
    # -> before the 18:00 close -> met
    ("earliest", "ship"): ("2026-03-04T23:00:00+00:00", "met"),
    # pick_completed twice (10:30 and, from another source, 12:00): the earliest counts -> met
    ("twice", "pick"): ("2026-03-05T16:00:00+00:00", "met"),
    # Paid Wed 10:00 EDT, before the cutoff -> due at Wednesday's close 18:00 EDT; the carrier had it at 09:00,
    # before the clock started: still evaluated (ended before due -> met), never dropped
    ("early_pickup", "ship"): ("2026-03-11T22:00:00+00:00", "met"),
}


@pytest.mark.parametrize("case", sorted(EXPECTED_AT_AS_OF), ids=lambda c: f"{c[0]}-{c[1]}")
def test_due_time_and_status_at_as_of(sla, case):
    evaluations, _ = sla["pinned"]
    due, status = EXPECTED_AT_AS_OF[case]
    row = evaluations[case]
    assert (row["due_at"], row["status"]) == (utc(due), status)
    assert row["as_of"] == utc(AS_OF) and row["as_of_is_pinned"] is True


def test_a_milestone_before_its_stage_start_is_evaluated_counted_and_reported(sla, engine):
    evaluations, _ = sla["pinned"]
    row = evaluations["early_pickup", "ship"]
    assert row["ended_at"] < row["started_at"]
    assert (row["started_at"], row["ended_at"]) == (utc("2026-03-11T10:00:00-04:00"), utc("2026-03-11T09:00:00-04:00"))
    with engine.connect() as conn:
        # counted in compliance: NJ1 ship stages due on Wednesday 2026-03-11 include it, as met
        compliance = conn.execute(
            sa.text(
                "select due_count, met_count from marts.agg_sla_compliance_daily where tenant_id = 'acme'"
                " and warehouse_id = 'NJ1' and stage = 'ship' and due_local_date = '2026-03-11'"
            )
        ).one()
        # what the warn-level check fct_sla_evaluations_milestone_not_before_stage_start counts
        odd = conn.execute(
            sa.text(
                "select count(*) from marts.fct_sla_evaluations where order_id = :o"
                " and not coalesce(ended_at is null or ended_at >= started_at, false)"
            ),
            {"o": row["order_id"]},
        ).scalar_one()
    assert compliance.due_count >= 1 and compliance.met_count >= 1
    assert odd == 1


def test_policy_resolution_records_policy_and_version(sla):
    evaluations, _ = sla["pinned"]
    picked = {
        name: (evaluations[name, "pick"]["policy_id"], evaluations[name, "pick"]["policy_version"])
        for name in ("before_switch", "after_switch", "globex_june", "columbus")
    }
    assert picked == {
        "before_switch": ("default_pick", 1),
        "after_switch": ("acme_pick", 2),
        "globex_june": ("default_pick", 1),
        "columbus": ("acme_pick", 2),
    }
    transit = evaluations["transit", "deliver"]
    assert (transit["policy_id"], transit["transit_days"]) == ("default_deliver", 2)
    assert evaluations["hold", "pick"]["hold_minutes"] == Decimal("30.0000")
    assert evaluations["open_hold", "pick"]["hold_minutes"] == Decimal("90.0000")


def test_lateness_severity_and_events_that_did_not_start_a_clock(sla):
    evaluations, _ = sla["pinned"]
    late = evaluations["after_close", "pick"]
    assert (late["ended_at"], late["minutes_late"], late["severity"]) == (
        utc("2026-03-03T10:30:00-05:00"),
        Decimal("30.00"),
        "minor",
    )
    overdue = evaluations["overdue", "pick"]
    assert (overdue["minutes_late"], overdue["severity"], overdue["reason_code"]) == (
        Decimal("1050.00"),
        "critical",
        "PICK_BACKLOG",
    )
    met = evaluations["weekend", "pick"]
    assert (met["minutes_late"], met["severity"], met["reason_code"]) == (None, None, None)
    assert evaluations["twice", "pick"]["ended_at"] == utc("2026-03-05T10:30:00-05:00")
    assert evaluations["earliest", "ship"]["ended_at"] == utc("2026-03-04T17:50:00-05:00")
    # pack starts at pick completion: no pick -> no pack row; a cancelled order's pack never started
    assert ("cancelled", "pack") not in evaluations and ("at_risk", "pack") not in evaluations
    assert ("overdue", "pick") in evaluations and ("overdue", "pack") not in evaluations


def test_exceptions_at_as_of(sla):
    _, exceptions = sla["pinned"]
    overdue = exceptions["overdue", "pick"]
    assert (overdue["status"], overdue["opened_at"], overdue["resolved_at"], overdue["severity"]) == (
        "open",
        utc("2026-11-19T21:30:00+00:00"),
        None,
        "critical",
    )
    assert exceptions["at_risk", "pick"]["status"] == "at_risk"
    assert exceptions["after_close", "pick"]["status"] == "resolved"
    assert exceptions["after_close", "pick"]["resolved_at"] == utc("2026-03-03T10:30:00-05:00")
    # Cancelled 22 h after the 11:00 EST due: the open exception closes as cancelled (1320 min, critical)
    cancelled = exceptions["cancel_late", "pick"]
    assert (cancelled["status"], cancelled["minutes_late"], cancelled["severity"]) == (
        "cancelled",
        Decimal("1320.00"),
        "critical",
    )
    # Met stages, on-track stages and orders cancelled before due are no exceptions
    for key in [("weekend", "pick"), ("on_track", "pick"), ("cancelled", "pick"), ("open_hold", "pick")]:
        assert key not in exceptions


def test_exception_resolves_when_the_late_milestone_lands_and_ids_never_change(sla):
    pinned = sla["pinned"][1]
    live_evaluations, live = sla["live"]
    incremental_evaluations, incremental = sla["live_incremental"]
    # The pick completed Fri 12:00 EST, after AS_OF: the live build resolves the exception, same id.
    resolved = live["overdue", "pick"]
    assert resolved["exception_id"] == pinned["overdue", "pick"]["exception_id"]
    assert (resolved["status"], resolved["resolved_at"], resolved["minutes_late"]) == (
        "resolved",
        utc("2026-11-20T17:00:00+00:00"),
        Decimal("1170.00"),
    )  # 16:30 Thu -> 12:00 Fri EST
    # Ids are the same in every build; nothing is duplicated or reopened by the incremental rebuild.
    shared = set(pinned) & set(live)
    assert shared and all(pinned[k]["exception_id"] == live[k]["exception_id"] for k in shared)
    # (open ones are re-evaluated at the new as_of, so only their minutes late may grow)
    stable = ("exception_id", "status", "opened_at", "resolved_at", "reason_code", "policy_id", "due_at")
    assert {k: [r[c] for c in stable] for k, r in incremental.items()} == {
        k: [r[c] for c in stable] for k, r in live.items()
    }
    # Five minutes passed while NJ1 was open: the unreleased hold paused the pick and ship clocks five more
    # minutes; every other due time and every status stays.
    held = [("open_hold", "pick"), ("open_hold", "ship")]
    assert {k: (r["due_at"], r["status"]) for k, r in incremental_evaluations.items() if k not in held} == {
        k: (r["due_at"], r["status"]) for k, r in live_evaluations.items() if k not in held
    }
    # final rows are not rewritten by the incremental build
    assert incremental_evaluations["weekend", "pick"]["as_of"] == live_evaluations["weekend", "pick"]["as_of"]
    running = ("before_open", "ship")
    assert incremental_evaluations[running]["as_of"] > live_evaluations[running]["as_of"]
    assert not any(
        row["status"] == "open" and key in pinned and pinned[key]["status"] == "resolved" for key, row in live.items()
    )


def test_an_open_hold_keeps_pausing_the_clock_while_the_live_clock_moves(sla):
    live_evaluations, _ = sla["live"]
    later_evaluations, _ = sla["live_incremental"]
    # Paid Fri 11-20 08:00 EST, hold placed 08:30, never released. At LIVE (Tue 11-24 10:00 EST) the hold has
    # lasted Fri 08:30-18:00 (570) + Mon 08:00-18:00 (600) + Tue 08:00-10:00 (120) = 1290 business minutes.
    # pick: 08:00 Fri + 90 + 1290 = 1380 business minutes = Fri 600 + Mon 600 + Tue 180 -> Tue 11:00 EST.
    # ship (paid before the cutoff): Fri 18:00 + 1290 = Mon 600 + Tue 600 + Wed 90 -> Wed 09:30 EST.
    # Five minutes later (LATER, still open): 1295 on hold, both due five minutes later; on track.
    expected = {
        ("pick", "live"): ("2026-11-24T16:00:00+00:00", "1290.0000"),
        ("pick", "later"): ("2026-11-24T16:05:00+00:00", "1295.0000"),
        ("ship", "live"): ("2026-11-25T14:30:00+00:00", "1290.0000"),
        ("ship", "later"): ("2026-11-25T14:35:00+00:00", "1295.0000"),
    }
    got = {
        (stage, build): (rows["open_hold", stage]["due_at"], rows["open_hold", stage]["hold_minutes"])
        for stage in ("pick", "ship")
        for build, rows in (("live", live_evaluations), ("later", later_evaluations))
    }
    assert got == {k: (utc(due), Decimal(minutes)) for k, (due, minutes) in expected.items()}
    assert {later_evaluations["open_hold", stage]["status"] for stage in ("pick", "ship")} == {"on_track"}
    assert later_evaluations["open_hold", "pick"]["as_of"] == utc(LATER)


def test_compliance_counts_due_stages_only(sla):
    # globex BER1 pick due 2026-03-30: dst_ber met, ber_late late, ber_cancel cancelled (excluded)
    row = sla["compliance"]
    columns = ("due_count", "met_count", "late_count", "cancelled_count", "compliance_pct")
    assert tuple(row[c] for c in columns) == (2, 1, 1, 1, Decimal("50.00"))


def test_calendar_materialization_reports_its_window(sla):
    materialization = sla["calendar"].asset_materializations_for_node("reference__warehouse_calendar")[0]
    assert materialization.metadata["dagster/row_count"].value > 2 * 365


def test_refresh_job_records_counts_by_status_and_severity(sla, definitions):
    """The scheduled job (as_of = now) through Dagster: the SLA marts' materializations carry the figures."""
    job = definitions.resolve_job_def("refresh_sla_job")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
    assert result.success
    by_key = {
        m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("e2a_dbt_models")
    }
    evaluations = by_key["marts/fct_sla_evaluations"]
    statuses = {
        k: evaluations[f"status_{k}"].value for k in ("met", "late", "overdue", "at_risk", "on_track", "cancelled")
    }
    # at least this module's final rows (other tests share the database, so lower bounds only)
    assert statuses["met"] >= 9 and statuses["late"] >= 4 and statuses["cancelled"] >= 5
    assert evaluations["dagster/row_count"].value == sum(statuses.values())
    assert evaluations["severity_critical"].value >= 1
    exceptions = by_key["marts/fct_sla_exceptions"]
    assert exceptions["status_resolved"].value >= 4 and exceptions["status_cancelled"].value >= 1


def test_refresh_schedule_waits_for_its_inputs_on_a_fresh_database(sla, definitions, pg_info, monkeypatch):
    """On a fresh database the 5-minute refresh would fail (its unit tests read staging views that the first
    ingestion and automation runs create): it skips, naming what is missing, then runs once they exist. A build
    already queued, or one started in the last four minutes, makes it skip too (a build evaluates at the instant it
    starts)."""
    import psycopg

    schedule = definitions.resolve_schedule_def("sla_refresh_schedule")
    repository = definitions.get_repository_def()
    # A persistent instance: the schedule looks up queued SLA builds, which an ephemeral one cannot answer.
    with dg.instance_for_test() as instance:

        def tick():
            with dg.build_schedule_context(
                instance=instance, resources={"database": Database()}, repository_def=repository
            ) as ctx:
                return schedule.evaluate_tick(ctx)

        ready = tick()
        assert len(ready.run_requests) == 1 and ready.skip_message is None  # this module built all it reads

        queued = instance.create_run_for_job(
            repository.get_job("refresh_sla_job"), tags=dict(SLA_BUILD_TAGS), status=dg.DagsterRunStatus.NOT_STARTED
        )
        waiting = tick()
        assert waiting.run_requests == [] and queued.run_id[:8] in waiting.skip_message
        # Once it has started it evaluated at its start: for four minutes the statuses are fresh without a
        # refresh (under a steady feed the ingestion waves keep them so); a failed build does not count.
        instance.report_run_failed(queued)
        assert len(tick().run_requests) == 1
        instance.delete_run(queued.run_id)
        started = instance.create_run_for_job(
            repository.get_job("ingest_landing_events_job"),
            tags=dict(SLA_BUILD_TAGS),
            status=dg.DagsterRunStatus.STARTED,
        )
        fresh_enough = tick()
        assert fresh_enough.run_requests == [] and "statuses are fresh" in fresh_enough.skip_message
        assert started.run_id[:8] in fresh_enough.skip_message
        instance.delete_run(started.run_id)

        fresh = "e2a_schedule_fresh"
        with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{fresh}" with (force)')
            conn.execute(f'create database "{fresh}"')
        monkeypatch.setenv("E2A_DATABASE_URL", pg_info.with_dbname(fresh).url())
        empty = tick()
    assert empty.run_requests == [] and "staging.stg_landing__order_events" in empty.skip_message
    assert "reference.tenants" in empty.skip_message  # the seeds are not loaded either
