"""`e2a dev`'s demo history spans the previous month, so the invoice guard has a complete invoice to check."""

from datetime import UTC, date, datetime, timedelta

import pytest

from e2a_dagster.cli import demo_days


@pytest.mark.parametrize(
    ("now", "first_day"),
    [
        (datetime(2026, 11, 28, 21, 0, tzinfo=UTC), date(2026, 10, 1)),
        (datetime(2026, 3, 1, 0, 30, tzinfo=UTC), date(2026, 2, 1)),
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), date(2025, 12, 1)),
    ],
)
def test_demo_history_covers_the_whole_previous_month(now, first_day):
    # the simulator writes orders created over [now - days, now]
    assert (now - timedelta(days=demo_days(now))).date() < first_day
    assert (now - timedelta(days=demo_days(now) - 1)).date() >= first_day - timedelta(days=1)
