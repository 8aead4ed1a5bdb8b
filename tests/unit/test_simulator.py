"""The simulator: business calendar arithmetic, the SLA answer key, billing, determinism and id uniqueness."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.simulator.sim_billing import DISCREPANCY_TYPES, BillableOrder, RateCards, correct_invoices
from e2a_dagster.lib.simulator.sim_sla import Milestones, SlaReference, evaluate
from e2a_dagster.lib.simulator.simulator import LiveFeed, simulate_history

Z = UTC


@pytest.fixture(scope="module")
def sla() -> SlaReference:
    return SlaReference()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(Z)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        # Friday 17:30 EST + 120: 30 on Friday, 90 on Monday after the DST change (08:00 EDT opening)
        ("2026-03-06T17:30:00-05:00", 120, "2026-03-09T09:30:00-04:00"),
        # Thanksgiving (US holiday) is closed: Wednesday's last 30 minutes, then Friday
        ("2026-11-25T17:30:00-05:00", 60, "2026-11-27T08:30:00-05:00"),
        # Veterans Day is open at NJ1 by calendar exception
        ("2026-11-11T08:00:00-05:00", 30, "2026-11-11T08:30:00-05:00"),
        # an allowance that runs out exactly at closing is due at closing
        ("2026-03-02T16:00:00-05:00", 120, "2026-03-02T18:00:00-05:00"),
        # a clock starting on Saturday starts at Monday's opening
        ("2026-03-07T10:00:00-05:00", 45, "2026-03-09T08:45:00-04:00"),
    ],
)
def test_business_minutes_at_nj1(sla, start, minutes, due):
    assert sla.calendars["NJ1"].add_minutes(utc(start), minutes) == utc(due)


def test_answer_key_follows_design_section_5(sla):
    order = Milestones(
        "acme",
        "HAND-1",
        "NJ1",
        "ups",
        "ground",
        paid_at=utc("2026-03-02T09:00:00-05:00"),
        pick_completed_at=utc("2026-03-02T11:30:00-05:00"),  # due 11:00 (120 min): late by 30, minor
        handed_to_carrier_at=utc("2026-03-02T17:00:00-05:00"),  # after as_of: not known yet
    )
    rows = {r.stage: r for r in evaluate(order, utc("2026-03-02T16:30:00-05:00"), sla)}
    assert set(rows) == {"pick", "pack", "ship"}  # deliver's clock has not started
    assert (rows["pick"].status, rows["pick"].due_at, rows["pick"].minutes_late, rows["pick"].severity) == (
        "late",
        utc("2026-03-02T11:00:00-05:00"),
        30.0,
        "minor",
    )
    # pack: 180 minutes from 11:30 -> 14:30; at 16:30 it is overdue by 120 minutes: major
    assert (rows["pack"].status, rows["pack"].due_at, rows["pack"].minutes_late, rows["pack"].severity) == (
        "overdue",
        utc("2026-03-02T14:30:00-05:00"),
        120.0,
        "major",
    )
    # ship: paid before the 14:00 cutoff -> due at 18:00 closing; 16:30 is within the 120 at-risk minutes
    assert (rows["ship"].status, rows["ship"].due_at, rows["ship"].ended_at) == (
        "at_risk",
        utc("2026-03-02T18:00:00-05:00"),
        None,
    )
    assert rows["pick"].policy_id == "default_pick" and rows["pick"].policy_version == 1


def test_acme_pick_override_from_june_and_transit_days(sla):
    order = Milestones(
        "acme",
        "HAND-2",
        "NJ1",
        "ups",
        "express",
        paid_at=utc("2026-06-01T09:00:00-04:00"),
        pick_completed_at=utc("2026-06-01T10:45:00-04:00"),
        handed_to_carrier_at=utc("2026-06-05T16:00:00-04:00"),  # Friday
        delivered_at=utc("2026-06-09T23:59:00-04:00"),
    )
    rows = {r.stage: r for r in evaluate(order, utc("2026-06-12T00:00:00-04:00"), sla)}
    # 90 business minutes from 09:00 -> 10:30: 15 minutes late
    assert (rows["pick"].policy_version, rows["pick"].due_at, rows["pick"].status) == (
        2,
        utc("2026-06-01T10:30:00-04:00"),
        "late",
    )
    # express = 2 carrier days after Friday: Mon, Tue -> due at the end of Tuesday 2026-06-09
    assert (rows["deliver"].due_at, rows["deliver"].status) == (utc("2026-06-10T00:00:00-04:00"), "met")


def test_correct_invoice_follows_design_section_6():
    late, on_time = "HAND-LATE", "HAND-OK"
    orders = [
        BillableOrder("acme", on_time, utc("2026-03-10T17:00:00-04:00"), None, 3, None, Decimal("5.00")),
        BillableOrder("acme", late, utc("2026-03-11T17:00:00-04:00"), None, 1, 2, None, ship_late=True),
        BillableOrder("acme", "HAND-APRIL", utc("2026-04-01T10:00:00-04:00"), None, 1, 1, None),
    ]
    (invoice,) = correct_invoices(orders, RateCards(), end=utc("2026-04-02T00:00:00-04:00"), run_tag="T")
    assert (invoice.invoice_id, str(invoice.period_start), str(invoice.period_end)) == (
        "INV-ACME-202603-T",
        "2026-03-01",
        "2026-03-31",
    )
    got = [(ln.charge_code, ln.order_id, str(ln.quantity), str(ln.amount)) for ln in invoice.lines]
    assert got == [
        ("ORDER_FEE", late, "1", "2.50"),
        ("PICK_UNIT", late, "1", "0.35"),
        ("PACK_CARTON", late, "2", "1.20"),
        ("ORDER_FEE", on_time, "1", "2.50"),
        ("PICK_UNIT", on_time, "3", "1.05"),
        ("PACK_CARTON", on_time, "1", "0.60"),  # no carton count: 1
        ("SHIPPING", on_time, "1", "5.50"),  # one label: postage 5.00 + 10 %
        # fees without shipping 8.20 < 250.00
        ("MONTHLY_MINIMUM", None, "1", "241.80"),
        # late ship: 100 % of the order's ORDER_FEE, under the cap (10 % of 255.50)
        ("SLA_CREDIT", late, "1", "-2.50"),
    ]


def test_history_is_deterministic_labelled_and_ids_never_repeat(tmp_path):
    reference = Reference.load()
    end = datetime(2026, 4, 3, 12, tzinfo=Z)

    def run(name: str, seed: int) -> dict:
        home = tmp_path / name
        return simulate_history(
            reference,
            home / "events",
            orders=1200,
            days=40,
            seed=seed,
            end=end,
            anomalies=0.2,
            billing_dir=home / "billing",
            ground_truth_dir=home / "gt",
            shopify_store=home / "store.jsonl",
            shopify_tenant="acme",
        )

    a, b, c = run("a", 7), run("b", 7), run("c", 8)

    def files(name: str) -> dict:
        return {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*") if p.is_file()}

    assert files("a") == files("b")  # same seed and window, same bytes (events, store, invoices, truth)
    assert a["run_tag"] == b["run_tag"] != c["run_tag"]

    def order_ids(name: str) -> set[str]:
        ids = set()
        for path in (tmp_path / name / "events").glob("*.jsonl"):
            ids |= {json.loads(line)["order_id"] for line in path.read_text().splitlines()}
        return ids

    assert order_ids("a") and not order_ids("a") & order_ids("c")

    truth = [json.loads(line) for line in (tmp_path / "a" / "gt" / f"{a['run_tag']}.jsonl").read_text().splitlines()]
    assert truth[0]["kind"] == "run" and truth[0]["as_of"] == end.isoformat()
    errors = [t for t in truth if t["kind"] == "billing_error"]
    acme_march = f"INV-ACME-202603-{a['run_tag']}"
    assert {e["discrepancy_type"] for e in errors if e["invoice_id"] == acme_march} == set(DISCREPANCY_TYPES)
    globex_march = f"INV-GLOBEX-202603-{a['run_tag']}"
    assert {e["discrepancy_type"] for e in errors if e["invoice_id"] == globex_march} == (
        set(DISCREPANCY_TYPES) - {"missing_sla_credit"}
    )  # globex has no SLA credits
    anomalies = {k for t in truth if t["kind"] == "order" for k in t["anomalies"]}
    assert anomalies == {"duplicate", "out_of_order", "late_arrival", "missing_scan", "split_identifier"}
    assert {t["status"] for t in truth if t["kind"] == "sla"} >= {"met", "late", "cancelled"}
    # personal data stays in the Shopify payloads: landing events carry none
    sample = (tmp_path / "a" / "events").glob("*.jsonl").__next__().read_text()
    assert "email" not in sample and "address" not in sample


def test_live_feed_ids_differ_across_restarts_and_events_are_never_in_the_future(tmp_path):
    reference = Reference.load()
    t0 = datetime(2026, 5, 4, 15, tzinfo=Z)
    feeds = [
        LiveFeed(
            reference,
            tmp_path / f"f{i}",
            orders_per_hour=600,
            seed=11,
            speed=120,
            backlog=timedelta(hours=6),
            now=t0 + timedelta(minutes=i),
        )
        for i in range(2)
    ]
    ids: list[set[str]] = []
    for feed in feeds:
        feed.tick(now=feed.origin_real + timedelta(minutes=3))  # 6 simulated hours: caught up
        written = [json.loads(line) for p in feed.events_dir.glob("*.jsonl") for line in p.read_text().splitlines()]
        assert written
        assert max(datetime.fromisoformat(r["occurred_at"]) for r in written) <= feed.origin_real + timedelta(minutes=3)
        ids.append({r["order_id"] for r in written})
    assert not ids[0] & ids[1]
