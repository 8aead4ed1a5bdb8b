"""The simulator's answer key for SLA status (DESIGN §5), computed in plain Python from a generated timeline.

This is deliberately an independent, loop-based implementation of the normative rules (the SLA engine is
set-based SQL): where both agree, the engine is right. Cases where the rules leave room for reading, or where
the simulator cannot be sure, come out as status ``unknown`` with a ``note`` instead of a guess."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from e2a_dagster.lib.core.reference import is_open, reference_rows
from e2a_dagster.lib.core.settings import reference_dir

BOUNDARY = timedelta(minutes=1)  # closer than this to a due/at-risk boundary: too close to call


class BusinessCalendar:
    """A warehouse's business time: working days and hours in its zone, public holidays (``holidays``), and
    ``calendar_exceptions`` (which can close a day or open one the library closes)."""

    def __init__(self, row: dict[str, str], exceptions: list[dict[str, str]]):
        self.warehouse_id = row["warehouse_id"]
        self.tz = ZoneInfo(row["time_zone"])
        self.opens = time.fromisoformat(row["open_time"])
        self.closes = time.fromisoformat(row["close_time"])
        self.cutoff = time.fromisoformat(row["cutoff_time"])
        self.working_days = {int(d) for d in row.get("working_days", "1|2|3|4|5").split("|") if d}
        self.holidays = holidays_lib.country_holidays(row["country"], subdiv=row.get("subdivision") or None)
        self.exceptions = {
            date.fromisoformat(e["local_date"]): e for e in exceptions if e["warehouse_id"] == self.warehouse_id
        }
        self._hours = lru_cache(maxsize=4096)(self._compute_hours)

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def _compute_hours(self, day: date) -> tuple[datetime, datetime] | None:
        exc = self.exceptions.get(day)
        if exc is not None:
            if not is_open(exc):
                return None
            opens = time.fromisoformat(exc["open_time"] or self.opens.isoformat())
            closes = time.fromisoformat(exc["close_time"] or self.closes.isoformat())
        elif day.isoweekday() not in self.working_days or day in self.holidays:
            return None
        else:
            opens, closes = self.opens, self.closes
        return (
            datetime.combine(day, opens, self.tz).astimezone(UTC),
            datetime.combine(day, closes, self.tz).astimezone(UTC),
        )

    def hours(self, day: date) -> tuple[datetime, datetime] | None:
        """(opening, closing) of a business day in UTC, None when closed."""
        return self._hours(day)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def next_open(self, at: datetime) -> datetime:
        """``at`` if the warehouse is open then (closing excluded), else its next opening."""
        day = self.local_date(at)
        for _ in range(400):
            hours = self.hours(day)
            if hours is not None:
                if at < hours[0]:
                    return hours[0]
                if at < hours[1]:
                    return at
            day += timedelta(days=1)
        raise ValueError(f"{self.warehouse_id}: no business day within 400 days of {at}")

    def add_minutes(self, at: datetime, minutes: float) -> datetime:
        """The earliest instant at which ``minutes`` business minutes after ``at`` are used up."""
        if minutes <= 0:
            return at
        current = self.next_open(at)
        remaining = timedelta(minutes=minutes)
        while True:
            closing = self.hours(self.local_date(current))[1]
            if current + remaining <= closing:
                return current + remaining
            remaining -= closing - current
            current = self.next_open(closing)

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes in [start, end]."""
        if end <= start:
            return 0.0
        total = timedelta()
        day = self.local_date(start)
        last = self.local_date(end)
        while day <= last:
            hours = self.hours(day)
            if hours is not None:
                lo, hi = max(start, hours[0]), min(end, hours[1])
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60

    def next_business_day(self, day: date) -> date:
        day += timedelta(days=1)
        while self.hours(day) is None:
            day += timedelta(days=1)
        return day

    def carrier_business_days_after(self, day: date, n: int) -> date:
        """The n-th carrier business day after ``day`` (Mon–Fri minus the warehouse's public holidays)."""
        while n > 0:
            day += timedelta(days=1)
            if day.isoweekday() <= 5 and day not in self.holidays:
                n -= 1
        return day


@dataclass(frozen=True)
class Policy:
    policy_id: str
    version: int
    tenant_id: str
    warehouse_id: str
    carrier: str
    service_level: str
    stage: str
    rule: str
    allowance: int | None
    at_risk: int
    major_after: int
    critical_after: int
    effective_from: datetime
    effective_to: datetime

    def specificity(self) -> tuple[int, int, int, int]:
        return tuple(int(v != "*") for v in (self.tenant_id, self.warehouse_id, self.carrier, self.service_level))


class SlaReference:
    """The seeds the SLA rules read."""

    def __init__(self, seeds_dir: Path | None = None):
        seeds_dir = seeds_dir or reference_dir()
        exceptions = reference_rows("calendar_exceptions.csv", seeds_dir)
        self.calendars = {
            r["warehouse_id"]: BusinessCalendar(r, exceptions) for r in reference_rows("warehouses.csv", seeds_dir)
        }
        self.exception_days = {(e["warehouse_id"], date.fromisoformat(e["local_date"])) for e in exceptions}
        self.transit = {
            (r["carrier"], r["service_level"]): int(r["transit_days"])
            for r in reference_rows("carrier_services.csv", seeds_dir)
        }
        self.policies = [
            Policy(
                r["policy_id"],
                int(r["policy_version"]),
                r["tenant_id"],
                r["warehouse_id"],
                r["carrier"],
                r["service_level"],
                r["stage"],
                r["rule"],
                int(r["allowance_minutes"]) if r["allowance_minutes"] else None,
                int(r["at_risk_minutes"] or 0),
                int(r["major_after_minutes"]),
                int(r["critical_after_minutes"]),
                _ts(r["effective_from"]),
                _ts(r["effective_to"]),
            )
            for r in reference_rows("sla_policies.csv", seeds_dir)
        ]

    def policy(
        self, stage: str, tenant: str, warehouse: str, carrier: str | None, service: str, at: datetime
    ) -> Policy | None:
        def match(value: str, wanted: str | None) -> bool:
            return value == "*" or value == wanted

        candidates = [
            p
            for p in self.policies
            if p.stage == stage
            and match(p.tenant_id, tenant)
            and match(p.warehouse_id, warehouse)
            and match(p.carrier, carrier)
            and match(p.service_level, service)
            and p.effective_from <= at < p.effective_to
        ]
        return max(candidates, key=lambda p: p.specificity()) if candidates else None

    def transit_days(self, carrier: str | None, service: str) -> int | None:
        return self.transit.get((carrier or "*", service), self.transit.get(("*", service)))


def _ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Milestones:
    """An order as the SLA rules see it: earliest occurrence of each milestone (observable events only)."""

    tenant_id: str
    order_id: str
    warehouse_id: str
    carrier: str | None
    service_level: str
    paid_at: datetime | None = None
    released_at: datetime | None = None
    pick_completed_at: datetime | None = None
    pack_completed_at: datetime | None = None
    handed_to_carrier_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    holds: tuple[tuple[datetime, datetime | None], ...] = ()


@dataclass(frozen=True)
class StageTruth:
    tenant_id: str
    order_id: str
    stage: str
    status: str  # met, late, overdue, at_risk, on_track, cancelled, unknown
    started_at: datetime
    due_at: datetime | None
    ended_at: datetime | None
    minutes_late: float | None
    severity: str | None
    policy_id: str | None
    policy_version: int | None
    note: str | None = None

    def as_record(self) -> dict:
        iso = lambda v: v.astimezone(UTC).isoformat() if v else None  # noqa: E731
        return {
            "kind": "sla",
            "tenant_id": self.tenant_id,
            "order_id": self.order_id,
            "stage": self.stage,
            "status": self.status,
            "started_at": iso(self.started_at),
            "due_at": iso(self.due_at),
            "ended_at": iso(self.ended_at),
            "minutes_late": round(self.minutes_late, 2) if self.minutes_late is not None else None,
            "severity": self.severity,
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "note": self.note,
        }


def _severity(policy: Policy, minutes_late: float) -> str:
    if minutes_late <= policy.major_after:
        return "minor"
    if minutes_late <= policy.critical_after:
        return "major"
    return "critical"


def evaluate(order: Milestones, as_of: datetime, ref: SlaReference) -> list[StageTruth]:
    """Status of every stage whose clock has started by ``as_of`` (stages not started have no row)."""
    cal = ref.calendars[order.warehouse_id]
    out: list[StageTruth] = []
    holds = order.holds
    open_hold = any(released is None or released > as_of for placed, released in holds if placed <= as_of)

    def hold_minutes(start: datetime, end: datetime | None) -> float:
        stop = min(end or as_of, as_of)
        return sum(cal.minutes_between(max(p, start), min(r, stop)) for p, r in holds if r is not None)

    def finish(
        stage: str,
        start: datetime,
        due: datetime,
        ended: datetime | None,
        policy: Policy,
        note: str | None = None,
    ) -> None:
        status: str
        late = None
        if ended is not None and ended > as_of:
            ended = None
        if (
            order.cancelled_at is not None
            and order.cancelled_at <= as_of
            and (ended is None or order.cancelled_at < ended)
        ):
            status = "cancelled"
        elif ended is not None:
            status = "met" if ended <= due else "late"
            if abs(ended - due) < BOUNDARY:
                note = note or "ended within a minute of due"
            if status == "late":
                late = (ended - due).total_seconds() / 60
        elif as_of > due:
            status, late = "overdue", (as_of - due).total_seconds() / 60
            if as_of - due < BOUNDARY:
                note = note or "as_of within a minute of due"
        else:
            risk_from = due - timedelta(minutes=policy.at_risk)
            status = "at_risk" if as_of >= risk_from else "on_track"
            if abs(as_of - risk_from) < BOUNDARY or due - as_of < BOUNDARY:
                note = note or "as_of within a minute of a boundary"
        if note is not None:
            status = "unknown"
        out.append(
            StageTruth(
                order.tenant_id,
                order.order_id,
                stage,
                status,
                start,
                due,
                ended,
                late,
                _severity(policy, late) if late is not None and status != "unknown" else None,
                policy.policy_id,
                policy.version,
                note,
            )
        )

    def unknown(stage: str, start: datetime, note: str) -> None:
        out.append(
            StageTruth(
                order.tenant_id,
                order.order_id,
                stage,
                "unknown",
                start,
                None,
                None,
                None,
                None,
                None,
                None,
                note,
            )
        )

    # pick and ship: clock starts at payment (or release if later)
    start = order.paid_at
    if order.released_at is not None and (start is None or order.released_at > start):
        start = order.released_at
    if start is not None and start <= as_of:
        for stage, ended in (("pick", order.pick_completed_at), ("ship", order.handed_to_carrier_at)):
            policy = ref.policy(stage, order.tenant_id, order.warehouse_id, order.carrier, order.service_level, start)
            if policy is None:
                unknown(stage, start, "no policy matches")
                continue
            if open_hold:
                unknown(stage, start, "a hold is still open at as_of")
                continue
            paused = hold_minutes(start, ended)
            if stage == "pick":
                due = cal.add_minutes(start, policy.allowance + paused)
            else:
                local = start.astimezone(cal.tz)
                day = local.date()
                hours = cal.hours(day)
                if hours is not None and local.time() <= cal.cutoff:
                    base = hours[1]
                else:
                    base = cal.hours(cal.next_business_day(day))[1]
                note = None
                if abs(local - datetime.combine(day, cal.cutoff, cal.tz)) < BOUNDARY:
                    note = "clock starts within a minute of the cutoff"
                due = cal.add_minutes(base, paused) if paused else base
                finish(stage, start, due, ended, policy, note)
                continue
            finish(stage, start, due, ended, policy)

    # pack: from pick completion
    if order.pick_completed_at is not None and order.pick_completed_at <= as_of:
        start = order.pick_completed_at
        policy = ref.policy("pack", order.tenant_id, order.warehouse_id, order.carrier, order.service_level, start)
        if policy is None:
            unknown("pack", start, "no policy matches")
        else:
            finish("pack", start, cal.add_minutes(start, policy.allowance), order.pack_completed_at, policy)

    # deliver: from the hand-over, N carrier business days
    if order.handed_to_carrier_at is not None and order.handed_to_carrier_at <= as_of:
        start = order.handed_to_carrier_at
        policy = ref.policy("deliver", order.tenant_id, order.warehouse_id, order.carrier, order.service_level, start)
        days = ref.transit_days(order.carrier, order.service_level)
        if policy is None or days is None:
            unknown("deliver", start, "no policy or transit time matches")
        else:
            pickup_day = cal.local_date(start)
            due_day = cal.carrier_business_days_after(pickup_day, days)
            note = None
            span = [pickup_day + timedelta(days=i) for i in range((due_day - pickup_day).days + 1)]
            if any((order.warehouse_id, d) in ref.exception_days for d in span):
                note = "a calendar exception falls in the transit window (carrier days are ambiguous)"
            due = datetime.combine(due_day + timedelta(days=1), time(0), cal.tz).astimezone(UTC)
            finish("deliver", start, due, order.delivered_at, policy, note)
    return out
