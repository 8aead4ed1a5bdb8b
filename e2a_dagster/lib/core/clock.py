"""The one clock of E²A: the instant the live system treats as now (DESIGN §3, §9).

``E2A_NOW`` (ISO-8601 with a UTC offset) pins it: a live run, the SLA refresh, the invoice job, the radar report
and the simulator's live feed all see that instant, so tests (and audits) never depend on the wall clock. Unset,
it is the wall clock. dbt reads the same variable in ``macros/as_of_timestamp.sql``.

Bookkeeping stamps (``ingested_at``, ``updated_at``, …) stay on the database's own clock: they record when
something happened to E²A, not the business instant."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

NOW_ENV = "E2A_NOW"


class ClockError(ValueError):
    """An instant that is not ISO-8601 with a UTC offset; the message says which setting and how to fix it."""


def parse_instant(text: str, *, what: str = NOW_ENV) -> datetime:
    """An ISO-8601 instant that must carry its UTC offset (a naive time is ambiguous: refused)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ClockError(f"{what} {text!r} is not an ISO-8601 timestamp (e.g. 2026-03-02T10:00:00-05:00)") from None
    if value.tzinfo is None:
        raise ClockError(f"{what} {text!r} needs a UTC offset (e.g. {text.strip()}+00:00)")
    return value


def pinned_now(environ: Mapping[str, str] | None = None) -> datetime | None:
    """``E2A_NOW`` as an instant, or None when the clock is the wall clock."""
    raw = (os.environ if environ is None else environ).get(NOW_ENV, "").strip()
    return parse_instant(raw) if raw else None


def now(environ: Mapping[str, str] | None = None) -> datetime:
    """The instant E²A treats as now: ``E2A_NOW`` when set, else the wall clock (aware, UTC)."""
    pinned = pinned_now(environ)
    return pinned if pinned is not None else datetime.now(UTC)


def today(time_zone: str | None = None, environ: Mapping[str, str] | None = None) -> date:
    """Today's date at ``now()`` in ``time_zone`` (IANA name; None = UTC)."""
    return now(environ).astimezone(ZoneInfo(time_zone) if time_zone else UTC).date()
