"""The one clock (lib/core/clock.py): E2A_NOW pins "now" for the whole live system."""

from datetime import UTC, date, datetime, timedelta

import pytest

from e2a_dagster.lib.core import clock


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


def test_now_and_as_of_are_read_in_one_place_each():
    """One parser and one default (issue 14): Python reads E2A_NOW only in lib/core/clock.py (``e2a run --as-of``
    goes through ``clock.parse_instant`` too); dbt reads it only in macros/as_of_timestamp.sql, the one default of
    ``as_of``, and ``var('as_of')`` only there and in macros/as_of_is_pinned.sql."""
    import re

    from e2a_dagster.lib.core.settings import PROJECT_ROOT

    def files(pattern: str, *folders: str, suffix: str) -> list[str]:
        found = []
        for folder in folders:
            for path in sorted((PROJECT_ROOT / folder).rglob(f"*{suffix}")):
                if re.search(pattern, path.read_text()):
                    found.append(str(path.relative_to(PROJECT_ROOT)))
        return found

    assert files(r"[\"']E2A_NOW[\"']", "e2a_dagster", "sensors", suffix=".py") == ["e2a_dagster/lib/core/clock.py"]
    dbt = ("dbt_project/models", "dbt_project/macros", "dbt_project/tests")
    assert files(r"env_var\(\s*[\"']E2A_NOW", *dbt, suffix=".sql") == ["dbt_project/macros/as_of_timestamp.sql"]
    assert files(r"var\(\s*[\"']as_of[\"']", *dbt, suffix=".sql") == [
        "dbt_project/macros/as_of_is_pinned.sql",
        "dbt_project/macros/as_of_timestamp.sql",
    ]
