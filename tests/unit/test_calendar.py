"""The warehouse calendar (lib/sla/calendar.py): hours in the warehouse's zone across DST, holidays, exceptions."""

from datetime import UTC, date, datetime, timedelta

import pytest

from e2a_dagster.lib.sla.calendar import calendar_days, calendar_window

NJ1 = {
    "warehouse_id": "NJ1",
    "time_zone": "America/New_York",
    "country": "US",
    "subdivision": "NJ",
    "open_time": "08:00",
    "close_time": "18:00",
    "cutoff_time": "14:00",
    "working_days": "1|2|3|4|5",
}
BER1 = {
    "warehouse_id": "BER1",
    "time_zone": "Europe/Berlin",
    "country": "DE",
    "subdivision": "BE",
    "open_time": "07:00",
    "close_time": "16:00",
    "cutoff_time": "12:00",
    "working_days": "1|2|3|4|5",
}
COLUMBUS = {
    "warehouse_id": "NJ1",
    "local_date": "2026-10-12",
    "is_open": "true",
    "open_time": "08:00",
    "close_time": "18:00",
    "reason": "Open on Columbus Day",
}
INVENTORY = {
    "warehouse_id": "BER1",
    "local_date": "2026-03-31",
    "is_open": "false",
    "open_time": "",
    "close_time": "",
    "reason": "Inventory count",
}


def _days(first: str, last: str):
    days = calendar_days([NJ1, BER1], [COLUMBUS, INVENTORY], date.fromisoformat(first), date.fromisoformat(last))
    return {(d.warehouse_id, d.local_date.isoformat()): d for d in days}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_opening_hours_keep_their_local_time_across_dst():
    days = _days("2026-03-06", "2026-03-31")
    # New York: EST (-05:00) on Friday 6 March, EDT (-04:00) from Monday 9 March.
    assert utc(days["NJ1", "2026-03-06"].open_at.isoformat()) == utc("2026-03-06T13:00:00+00:00")
    assert utc(days["NJ1", "2026-03-09"].open_at.isoformat()) == utc("2026-03-09T12:00:00+00:00")
    assert utc(days["NJ1", "2026-03-09"].cutoff_at.isoformat()) == utc("2026-03-09T18:00:00+00:00")
    assert utc(days["NJ1", "2026-03-09"].close_at.isoformat()) == utc("2026-03-09T22:00:00+00:00")
    # Berlin: CET (+01:00) on Friday 27 March, CEST (+02:00) from Monday 30 March.
    assert utc(days["BER1", "2026-03-27"].open_at.isoformat()) == utc("2026-03-27T06:00:00+00:00")
    assert utc(days["BER1", "2026-03-30"].open_at.isoformat()) == utc("2026-03-30T05:00:00+00:00")
    # The DST Sunday is 23 hours long in local time.
    sunday = days["NJ1", "2026-03-08"]
    assert sunday.day_end_at.astimezone(UTC) - sunday.day_start_at.astimezone(UTC) == timedelta(hours=23)
    assert not sunday.is_business_day and sunday.open_at is None and sunday.holiday_name is None


def test_holidays_close_and_exceptions_override():
    days = _days("2026-10-09", "2026-10-13") | _days("2026-05-25", "2026-05-25") | _days("2026-03-31", "2026-03-31")
    memorial = days["NJ1", "2026-05-25"]
    assert (memorial.is_business_day, memorial.holiday_name, memorial.is_carrier_business_day) == (
        False,
        "Memorial Day",
        False,
    )
    columbus = days["NJ1", "2026-10-12"]
    assert columbus.is_business_day and columbus.exception_reason == "Open on Columbus Day"
    assert columbus.is_public_holiday and not columbus.is_carrier_business_day  # carriers still observe it
    assert utc(columbus.open_at.isoformat()) == utc("2026-10-12T12:00:00+00:00")
    inventory = days["BER1", "2026-03-31"]
    assert (inventory.is_business_day, inventory.holiday_name, inventory.is_carrier_business_day) == (
        False,
        "Inventory count",
        True,
    )
    assert days["BER1", "2026-10-12"].is_business_day  # Columbus Day is not a German holiday
    # The working week, before holidays and exceptions (the narratives' weekend fact): Memorial Day and the
    # closure fall on working weekdays; Saturday and Sunday do not, whatever else the day is.
    assert memorial.is_working_weekday and inventory.is_working_weekday and columbus.is_working_weekday
    assert [days["NJ1", d].is_working_weekday for d in ("2026-10-09", "2026-10-10", "2026-10-11")] == [
        True,
        False,
        False,
    ]


def test_window_covers_today_and_the_data():
    assert calendar_window(date(2026, 11, 28)) == (date(2025, 10, 24), date(2027, 1, 27))
    assert calendar_window(date(2026, 11, 28), date(2024, 1, 10), date(2027, 3, 1), before=10, after=5) == (
        date(2023, 12, 31),
        date(2027, 3, 6),
    )


def test_bad_exceptions_are_refused_with_a_clear_message():
    bad = {**COLUMBUS, "open_time": "18:00", "close_time": "08:00"}
    with pytest.raises(ValueError, match="open_time < close_time"):
        list(calendar_days([NJ1], [bad], date(2026, 10, 12), date(2026, 10, 12)))
    with pytest.raises(ValueError, match="two calendar exceptions"):
        list(calendar_days([NJ1], [COLUMBUS, COLUMBUS], date(2026, 10, 12), date(2026, 10, 12)))
