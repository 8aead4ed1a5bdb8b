"""The daily billing partitions' pure parts: local days at 02:00, dbt vars, what one run covers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from e2a_dagster.lib.invoicing.billing_periods import (
    StaleDays,
    first_billing_day,
    plan_refresh,
    previous_local_day,
    tenants_by_zone,
    window_vars,
)


@pytest.mark.parametrize(
    ("utc_instant", "zone", "expected"),
    [
        # 02:00 in New York (EST) on 03-09 = 07:00 UTC: the day closed is 03-08
        ("2026-03-09T07:00:00", "America/New_York", date(2026, 3, 8)),
        # 02:00 in Auckland (NZDT, +13) on 11-28 = 13:00 UTC on 11-27: the day closed is 11-27, today in UTC
        ("2026-11-27T13:00:00", "Pacific/Auckland", date(2026, 11, 27)),
        # the spring-forward night in Berlin: 02:00 does not exist, Dagster fires at 03:00 CEST = 01:00 UTC
        ("2026-03-29T01:00:00", "Europe/Berlin", date(2026, 3, 28)),
    ],
)
def test_previous_local_day_is_the_tenant_zones_yesterday(utc_instant, zone, expected):
    instant = datetime.fromisoformat(utc_instant).replace(tzinfo=UTC)
    assert previous_local_day(instant, zone) == expected


def test_previous_local_day_refuses_a_naive_instant():
    with pytest.raises(ValueError, match="timezone-aware"):
        previous_local_day(datetime(2026, 3, 9, 2), "America/New_York")


def test_tenants_grouped_by_zone_skip_tenants_without_one():
    tenants = {
        "b": {"time_zone": "Europe/Berlin"},
        "a": {"time_zone": "America/New_York"},
        "c": {"time_zone": "America/New_York"},
        "d": {"time_zone": ""},
    }
    assert tenants_by_zone(tenants) == {"America/New_York": ["a", "c"], "Europe/Berlin": ["b"]}


def test_window_vars_are_inclusive_dates_and_sorted_tenants():
    assert window_vars(date(2026, 7, 1), date(2026, 7, 9), ["globex", "acme"]) == {
        "billing_from": "2026-07-01",
        "billing_to": "2026-07-09",
        "billing_tenants": ["acme", "globex"],
    }
    assert window_vars(date(2026, 7, 1), date(2026, 7, 1)) == {"billing_from": "2026-07-01", "billing_to": "2026-07-01"}
    with pytest.raises(ValueError, match="ends before it starts"):
        window_vars(date(2026, 7, 2), date(2026, 7, 1))


def test_first_billing_day_from_the_environment():
    assert first_billing_day({}) == date(2025, 1, 1)
    assert first_billing_day({"E2A_BILLING_START": "2026-02-01"}) == date(2026, 2, 1)
    with pytest.raises(ValueError, match="E2A_BILLING_START"):
        first_billing_day({"E2A_BILLING_START": "February"})


def _stale(tenant: str, first: str, last: str, **reasons: int) -> StaleDays:
    f, lo = date.fromisoformat(first), date.fromisoformat(last)
    return StaleDays(tenant, f, lo, (lo - f).days + 1, reasons, ("INV-1",))


FIRST, LAST = date(2025, 1, 1), date(2026, 7, 10)


def test_nightly_plan_is_yesterday_alone_when_nothing_is_stale():
    plan = plan_refresh(["acme"], [], yesterday=date(2026, 7, 9), first_day=FIRST, last_day=LAST)
    assert (plan.start, plan.end, plan.tenants) == (date(2026, 7, 9), date(2026, 7, 9), ("acme",))
    assert plan.partition_range() == ("2026-07-09", "2026-07-09")
    assert plan.reasons == {"nightly": "2026-07-09"}


def test_nightly_plan_spans_yesterday_and_the_stale_days_of_its_own_tenants_only():
    stale = [
        _stale("acme", "2026-06-01", "2026-06-30", invoice_received=30),
        _stale("globex", "2026-05-01", "2026-05-31", invoice_received=31),  # another zone's schedule
    ]
    plan = plan_refresh(["acme"], stale, yesterday=date(2026, 7, 9), first_day=FIRST, last_day=LAST)
    assert (plan.start, plan.end, plan.tenants) == (date(2026, 6, 1), date(2026, 7, 9), ("acme",))
    assert plan.reasons["acme"].startswith("2026-06-01..2026-06-30 (invoice_received 30d)")
    assert "globex" not in plan.reasons


def test_stale_days_are_clipped_to_the_partitions():
    stale = [_stale("acme", "2024-12-01", "2025-01-31", invoice_received=62)]
    plan = plan_refresh(["acme"], stale, yesterday=None, first_day=FIRST, last_day=LAST)
    assert (plan.start, plan.end) == (date(2025, 1, 1), date(2025, 1, 31))
    before = [_stale("acme", "2024-11-01", "2024-11-30", invoice_received=30)]
    assert plan_refresh(["acme"], before, yesterday=None, first_day=FIRST, last_day=LAST) is None


def test_sensor_plan_without_yesterday_and_nothing_stale_is_none():
    assert plan_refresh(["acme", "globex"], [], yesterday=None, first_day=FIRST, last_day=LAST) is None
    # a yesterday before the first partition (a young installation) is not asked for either
    assert plan_refresh(["acme"], [], yesterday=date(2024, 12, 31), first_day=FIRST, last_day=LAST) is None


def test_the_stale_day_check_reads_the_metering_rule_instead_of_restating_it():
    """Which charges an order implies is written once, in the dbt view int_billable_order_charges (the metered
    model reads it too): the check that compares it with the day's rows names no order charge of its own."""
    from e2a_dagster.lib.invoicing.billing_periods import CHANGE_RELATIONS, CHANGED_SQL

    assert "intermediate.int_billable_order_charges" in CHANGED_SQL
    assert "intermediate.int_billable_order_charges" in CHANGE_RELATIONS
    for code in ("ORDER_FEE", "PICK_UNIT", "PACK_CARTON", "SHIPPING"):
        assert code not in CHANGED_SQL
    for column in ("units", "cartons", "postage", "handed_to_carrier_at", "is_cancelled"):
        assert column not in CHANGED_SQL
