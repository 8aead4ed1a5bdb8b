"""The calendar facts of a narrative: the weekends, public holidays and closures the clock crossed.

They are read from ``reference.warehouse_calendar``, the one home of the business calendar (written by the asset
``reference/warehouse_calendar`` from ``lib/sla/calendar.py``; dbt reads the same table), never recomputed here:
``load_calendar`` reads the days of every (warehouse, date range) a batch of exceptions needs in one query, and
``calendar_facts`` turns the days one clock crossed into facts. Callers without a database (unit tests) index what
``lib/sla/calendar.py calendar_days`` yields, the very rows the asset writes, with ``index_days``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from e2a_dagster.lib.explanations.sql import plain_schema
from e2a_dagster.lib.sla.calendar import CalendarDay

MAX_DAYS = 60  # a runaway range says nothing useful
NO_CALENDAR: dict[str, Any] = {"weekend_crossed": None, "holidays": [], "closures": [], "started_after_cutoff": None}


@dataclass(frozen=True)
class CalendarDayFacts:
    """The columns of one ``reference.warehouse_calendar`` row the narratives read."""

    is_business_day: bool
    is_working_weekday: bool | None  # null on rows written before the column existed (the asset rewrites them)
    is_public_holiday: bool
    holiday_name: str | None
    exception_reason: str | None


CalendarIndex = Mapping[tuple[str, date], CalendarDayFacts]


def crossed_dates(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The warehouse-local dates from ``start`` to ``end`` (inclusive), at most ``MAX_DAYS`` after the first."""
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    return first, min(last, first + timedelta(days=MAX_DAYS))


def index_days(days: Iterable[CalendarDay]) -> dict[tuple[str, date], CalendarDayFacts]:
    """``lib/sla/calendar.py`` calendar days (what the calendar asset writes) by (warehouse_id, local_date)."""
    return {
        (d.warehouse_id, d.local_date): CalendarDayFacts(
            is_business_day=d.is_business_day,
            is_working_weekday=d.is_working_weekday,
            is_public_holiday=d.is_public_holiday,
            holiday_name=d.holiday_name,
            exception_reason=d.exception_reason,
        )
        for d in days
    }


def load_calendar(
    conn: sa.Connection, spans: Iterable[tuple[str, date, date]], schema: str = "reference"
) -> dict[tuple[str, date], CalendarDayFacts]:
    """The stored calendar days of every (warehouse_id, first, last) span (inclusive), in one query.
    ``schema`` holds ``warehouse_calendar`` (a backtest writes its own)."""
    table = f"{plain_schema(schema)}.warehouse_calendar"
    keys = sorted(set(spans))
    if not keys:
        return {}
    rows = conn.execute(
        sa.text(
            f"""
            select distinct c.warehouse_id, c.local_date, c.is_business_day, c.is_working_weekday,
                   c.is_public_holiday, c.holiday_name, c.exception_reason
            from {table} c
            join unnest(cast(:w as text[]), cast(:f as date[]), cast(:l as date[])) as k(warehouse_id, first_date,
                last_date)
              on c.warehouse_id = k.warehouse_id and c.local_date between k.first_date and k.last_date
            """
        ),
        {"w": [k[0] for k in keys], "f": [k[1] for k in keys], "l": [k[2] for k in keys]},
    ).mappings()
    return {
        (r["warehouse_id"], r["local_date"]): CalendarDayFacts(
            is_business_day=r["is_business_day"],
            is_working_weekday=r["is_working_weekday"],
            is_public_holiday=r["is_public_holiday"],
            holiday_name=r["holiday_name"],
            exception_reason=r["exception_reason"],
        )
        for r in rows
    }


def _closed_by(day: CalendarDayFacts) -> tuple[str, str] | None:
    """('closure', reason) or ('holiday', name) for a day the warehouse was closed by either, else None.

    An open day crossed nothing closed (a holiday a calendar exception opens is not one). A closed day with an
    exception reason was closed by a calendar exception; else a public holiday closed it; a closed day that is
    neither but has a name was closed by an exception without a reason (the calendar names it "Closed")."""
    if day.is_business_day:
        return None
    if day.exception_reason is not None:
        return "closure", day.exception_reason
    if day.is_public_holiday:
        return "holiday", day.holiday_name or ""
    if day.holiday_name is not None:
        return "closure", ""
    return None


def calendar_facts(
    warehouse: Mapping[str, str],
    start: datetime | None,
    end: datetime | None,
    days: CalendarIndex,
    stage: str,
) -> dict[str, Any]:
    """The calendar facts the clock crossed between ``start`` and ``end``: weekends, holidays, closures (from the
    stored calendar ``days``), and whether the clock started after the day's cutoff."""
    if start is None or end is None:
        return dict(NO_CALENDAR, holidays=[], closures=[])
    zone = ZoneInfo(warehouse["time_zone"])
    first, last = crossed_dates(start, end, zone)
    weekend, found, closures = False, [], []
    day = first
    while day <= last:
        stored = days.get((warehouse["warehouse_id"], day))
        closed = _closed_by(stored) if stored is not None else None
        if closed is not None and closed[0] == "closure":
            closures.append({"date": day.isoformat(), "reason": closed[1]})
        elif closed is not None:
            found.append({"date": day.isoformat(), "name": closed[1]})
        if stored is not None and stored.is_working_weekday is False:
            weekend = True
        day += timedelta(days=1)
    after_cutoff = None
    if stage in ("pick", "ship") and warehouse.get("cutoff_time"):
        after_cutoff = start.astimezone(zone).time() > time.fromisoformat(warehouse["cutoff_time"])
    return {
        "weekend_crossed": weekend,
        "holidays": found,
        "closures": closures,
        "started_after_cutoff": after_cutoff,
    }
