"""The one clock (lib/clock.py): E2A_NOW pins "now" for the whole live system."""

from datetime import UTC, date, datetime, timedelta

import pytest

from e2a_dagster.lib import clock


def test_pinned_now_is_the_instant_given():
    env = {"E2A_NOW": "2026-03-02T10:00:00-05:00"}
    assert clock.now(env) == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert clock.pinned_now(env) == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_today_is_the_local_date_of_the_pinned_instant():
    env = {"E2A_NOW": "2026-03-02T23:30:00-05:00"}  # 04:30 UTC on the 3rd
    assert clock.today("America/New_York", env) == date(2026, 3, 2)
    assert clock.today(None, env) == date(2026, 3, 3)
    assert clock.today("Europe/Berlin", env) == date(2026, 3, 3)


def test_unset_or_blank_is_the_wall_clock():
    for env in ({}, {"E2A_NOW": "  "}):
        assert clock.pinned_now(env) is None
        assert abs(clock.now(env) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("value", "message"),
    [("2026-03-02T10:00:00", "needs a UTC offset"), ("yesterday", "not an ISO-8601 timestamp")],
)
def test_a_naive_or_unreadable_instant_is_refused_with_the_setting_named(value, message):
    with pytest.raises(clock.ClockError, match=message) as raised:
        clock.now({"E2A_NOW": value})
    assert "E2A_NOW" in str(raised.value)
