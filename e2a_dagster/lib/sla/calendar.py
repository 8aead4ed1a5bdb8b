"""Warehouse business calendars (DESIGN §5): one row per warehouse and local date.

Plain functions, no Dagster: ``calendar_days`` turns the warehouse reference rows and the calendar exceptions into
days with their opening, closing and cutoff instants computed in the warehouse's IANA zone (so a daylight-saving
change never moves an opening hour), public holidays from the ``holidays`` library, and exceptions that win over
both. ``write_calendar`` replaces the stored calendar in one transaction. The one home of the calendar: dbt reads
the stored table (source ``calendar.warehouse_calendar``), and so do the narratives
(``lib/explanations/calendar_facts.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import sqlalchemy as sa

from e2a_dagster.lib.core.database import raw_connection
from e2a_dagster.lib.core.reference import is_open as exception_is_open
from e2a_dagster.lib.core.reference import reference_rows

TABLE = "reference.warehouse_calendar"
DAYS_BEFORE = 400
DAYS_AFTER = 60
CARRIER_WORKING_DAYS = frozenset({1, 2, 3, 4, 5})  # carriers work Monday–Friday, minus public holidays


@dataclass(frozen=True)
class CalendarDay:
    warehouse_id: str
    local_date: date
    time_zone: str
    is_business_day: bool
    open_at: datetime | None
    close_at: datetime | None
    cutoff_at: datetime | None
    day_start_at: datetime  # local 00:00 of the date
    day_end_at: datetime  # local 24:00 of the date (00:00 of the next date)
    is_public_holiday: bool
    is_carrier_business_day: bool
    holiday_name: str | None  # public holiday or closure reason when closed; the holiday it overrides when open
    exception_reason: str | None
    is_working_weekday: bool  # the weekday is in the warehouse's working week (before holidays and exceptions)


COLUMNS = tuple(f.name for f in fields(CalendarDay))


def _time(value: str | time | None) -> time | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def _working_days(value: str) -> frozenset[int]:
    days = frozenset(int(part) for part in str(value).split("|") if part.strip())
    if not days or not days <= set(range(1, 8)):
        raise ValueError(f"working_days must be ISO weekdays 1-7 separated by '|', got {value!r}")
    return days


def calendar_window(
    today: date,
    data_min: date | None = None,
    data_max: date | None = None,
    before: int = DAYS_BEFORE,
    after: int = DAYS_AFTER,
) -> tuple[date, date]:
    """The dates to materialize: ``before`` days before the earlier of today and the data, ``after`` days after
    the later of the two (inclusive bounds)."""
    first = min(today, data_min or today) - timedelta(days=before)
    last = max(today, data_max or today) + timedelta(days=after)
    return first, last


def calendar_days(
    warehouses: Iterable[Mapping[str, object]],
    exceptions: Iterable[Mapping[str, object]],
    first: date,
    last: date,
) -> Iterator[CalendarDay]:
    """Every (warehouse, local date) from ``first`` to ``last`` inclusive.

    ``warehouses`` rows carry warehouse_id, time_zone, country, subdivision, open_time, close_time, cutoff_time,
    working_days (as in ``seeds/warehouses.csv``); ``exceptions`` rows warehouse_id, local_date, is_open,
    open_time, close_time, reason (``seeds/calendar_exceptions.csv``)."""
    if last < first:
        raise ValueError(f"empty calendar window: {first} .. {last}")
    by_day: dict[tuple[str, date], Mapping[str, object]] = {}
    for row in exceptions:
        key = (str(row["warehouse_id"]), date.fromisoformat(str(row["local_date"])))
        if key in by_day:
            raise ValueError(f"two calendar exceptions for warehouse {key[0]} on {key[1]}")
        by_day[key] = row
    years = list(range(first.year, last.year + 1))
    for wh in warehouses:
        warehouse_id = str(wh["warehouse_id"])
        tz = ZoneInfo(str(wh["time_zone"]))
        subdivision = str(wh.get("subdivision") or "").strip() or None
        public = holidays.country_holidays(str(wh["country"]), subdiv=subdivision, years=years)
        regular_open, regular_close = _time(wh["open_time"]), _time(wh["close_time"])
        cutoff = _time(wh["cutoff_time"])
        working = _working_days(str(wh["working_days"]))
        day = first
        while day <= last:
            holiday = public.get(day)
            exception = by_day.get((warehouse_id, day))
            if exception is not None:
                is_open = exception_is_open(exception)
                opens, closes = _time(exception.get("open_time")), _time(exception.get("close_time"))
                if is_open and (opens is None or closes is None or opens >= closes):
                    raise ValueError(f"calendar exception {warehouse_id} {day}: open needs open_time < close_time")
                reason = str(exception.get("reason") or "") or None
                name = holiday if is_open else (reason or holiday or "Closed")
            else:
                is_open = day.isoweekday() in working and holiday is None
                opens, closes, reason, name = regular_open, regular_close, None, holiday
            if is_open:
                assert opens is not None and closes is not None
                open_at = datetime.combine(day, opens, tz)
                close_at = datetime.combine(day, closes, tz)
                cutoff_at = datetime.combine(day, min(cutoff or closes, closes), tz)
            else:
                open_at = close_at = cutoff_at = None
            yield CalendarDay(
                warehouse_id=warehouse_id,
                local_date=day,
                time_zone=str(wh["time_zone"]),
                is_business_day=is_open,
                open_at=open_at,
                close_at=close_at,
                cutoff_at=cutoff_at,
                day_start_at=datetime.combine(day, time(0), tz),
                day_end_at=datetime.combine(day + timedelta(days=1), time(0), tz),
                is_public_holiday=holiday is not None,
                is_carrier_business_day=day.isoweekday() in CARRIER_WORKING_DAYS and holiday is None,
                holiday_name=name,
                exception_reason=reason,
                is_working_weekday=day.isoweekday() in working,
            )
            day += timedelta(days=1)


def data_range(engine: sa.Engine) -> tuple[date | None, date | None]:
    """The UTC dates of the earliest and latest order activity — landing events and Shopify order versions
    (created_at .. updated_at) — or None when there is none."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            """
            select min(first_at)::date, max(last_at)::date
            from (
                select min(occurred_at) as first_at, max(occurred_at) as last_at from raw.order_events
                union all
                select min(least(updated_at, (payload ->> 'created_at')::timestamptz)), max(updated_at)
                from raw.shopify_orders
            ) as sources
            """
        ).one()
    return row[0], row[1]


def calendar_from_seeds(seeds_dir: Path, first: date, last: date) -> Iterator[CalendarDay]:
    """``calendar_days`` for the warehouses and exceptions in ``seeds_dir``."""
    return calendar_days(
        reference_rows("warehouses.csv", seeds_dir), reference_rows("calendar_exceptions.csv", seeds_dir), first, last
    )


def write_calendar(engine: sa.Engine, days: Iterable[CalendarDay], table: str = TABLE) -> int:
    """Replace the stored calendar (``table``) with ``days`` in one transaction; returns the number of rows."""
    count = 0
    with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute(f"delete from {table}")
        with cur.copy(f"copy {table} ({', '.join(COLUMNS)}) from stdin") as copy:
            for day in days:
                copy.write_row(astuple(day))
                count += 1
    return count
