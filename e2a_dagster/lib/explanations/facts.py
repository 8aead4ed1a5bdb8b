"""The facts of each exception: the prompt context and the template's input, PII-free by construction.

Built from whitelisted columns only: the SLA marts, the order's milestones, event *types and times*, reference
data and the stored calendar. Event payloads and attributes, which may hold customer PII, are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from e2a_dagster.lib.explanations.calendar_facts import (
    NO_CALENDAR,
    CalendarIndex,
    calendar_facts,
    crossed_dates,
    load_calendar,
)
from e2a_dagster.lib.explanations.reference_data import NarrativeReference
from e2a_dagster.lib.explanations.sql import plain_schema

SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2}
STATUS_RANK = {"overdue": 0, "late": 1, "at_risk": 2}
TIMELINE_LIMIT = 40


@dataclass(frozen=True)
class ExceptionFacts:
    exception_id: str
    tenant_id: str
    order_id: str
    stage: str
    status: str
    severity: str | None
    opened_at: datetime | None
    facts: dict[str, Any]

    @property
    def priority(self) -> tuple:
        """Critical and major first when the budget is short; then overdue before late before at risk."""
        opened = self.opened_at.timestamp() if self.opened_at else float("inf")
        return (
            SEVERITY_RANK.get(self.severity or "", 3),
            STATUS_RANK.get(self.status, 3),
            opened,
            self.exception_id,
        )


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    if value is None:
        return None
    return value.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def _rule_facts(
    policy: dict[str, str] | None,
    policy_id: str | None,
    version: int | None,
    warehouse: dict[str, str],
    transit: int | None,
) -> dict[str, Any]:
    if policy is None:
        return {"policy_id": policy_id, "policy_version": version, "type": None}
    facts: dict[str, Any] = {"policy_id": policy_id, "policy_version": version, "type": policy["rule"]}
    if policy["rule"] == "duration":
        facts["allowance_business_minutes"] = int(policy["allowance_minutes"]) if policy["allowance_minutes"] else None
    elif policy["rule"] == "cutoff":
        facts["cutoff_local"] = warehouse.get("cutoff_time")
        facts["closing_local"] = warehouse.get("close_time")
    elif policy["rule"] == "transit_days":
        facts["transit_carrier_business_days"] = transit
    return facts


def _warehouse(row: dict[str, Any], ref: NarrativeReference) -> tuple[str | None, dict[str, str]]:
    """The exception's warehouse id (the order's, else the tenant's default) and its reference row ({} if none)."""
    tenant = ref.tenants.get(row["tenant_id"], {})
    warehouse_id = row.get("warehouse_id") or tenant.get("default_warehouse_id")
    return warehouse_id, ref.warehouses.get(warehouse_id or "", {})


def _clock_span(row: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The stretch the calendar facts describe: the stage's start to its end, or to its due time when open."""
    return row.get("started_at"), row.get("ended_at") or row.get("due_at")


def calendar_span(row: dict[str, Any], ref: NarrativeReference) -> tuple[str, date, date] | None:
    """(warehouse_id, first, last): the calendar days ``build_facts`` reads for ``row``, or None."""
    _, warehouse = _warehouse(row, ref)
    start, end = _clock_span(row)
    if not warehouse or start is None or end is None:
        return None
    return (warehouse["warehouse_id"], *crossed_dates(start, end, ZoneInfo(warehouse["time_zone"])))


def build_facts(
    row: dict[str, Any], timeline: list[dict[str, Any]], ref: NarrativeReference, calendar: CalendarIndex
) -> ExceptionFacts:
    """The prompt context of one exception. Only whitelisted, PII-free fields go in. ``calendar``: the stored
    calendar days (``calendar_facts.load_calendar`` over ``calendar_span(row, ref)``, or ``index_days``)."""
    tenant = ref.tenants.get(row["tenant_id"], {})
    warehouse_id, warehouse = _warehouse(row, ref)
    zone = ZoneInfo(warehouse.get("time_zone") or tenant.get("time_zone") or "UTC")
    version = int(row["policy_version"]) if row.get("policy_version") is not None else None
    policy = ref.policies.get((row.get("policy_id") or "", version or 0))
    status = row["status"]
    minutes_late = row.get("minutes_late")
    # An open (overdue) exception's minutes grow every build: keep them out of the facts so the input hash,
    # and
    # with it the narrative, changes only when something meaningful does (status, severity, a new event).
    minutes_late = None if status != "late" or minutes_late is None else round(float(minutes_late))
    start, end = _clock_span(row)
    facts = {
        "order_id": row["order_id"],
        "tenant": {"id": row["tenant_id"], "name": tenant.get("tenant_name")},
        "warehouse": {
            "id": warehouse_id,
            "name": warehouse.get("warehouse_name"),
            "time_zone": str(zone),
            "opening_hours_local": f"{warehouse['open_time']}-{warehouse['close_time']}" if warehouse else None,
        },
        "stage": row["stage"],
        "status": status,
        "severity": row.get("severity"),
        "reason_code_from_events": row.get("reason_code"),
        "rule": _rule_facts(
            policy,
            row.get("policy_id"),
            version,
            warehouse,
            ref.transit(row.get("carrier"), row.get("service_level")),
        ),
        "started_at_local": _local(row.get("started_at"), zone),
        "due_at_local": _local(row.get("due_at"), zone),
        "ended_at_local": _local(row.get("ended_at"), zone),
        "still_open": row.get("ended_at") is None,
        "minutes_late": minutes_late,
        "minutes_late_hours": round(minutes_late / 60, 1) if minutes_late is not None else None,
        "carrier": row.get("carrier"),
        "service_level": row.get("service_level"),
        "timeline": [
            {"event": e["event_type"], "at_local": _local(e["occurred_at"], zone), "source": e["source"]}
            for e in timeline
        ],
        "calendar": calendar_facts(warehouse, start, end, calendar, row["stage"])
        if warehouse
        else dict(NO_CALENDAR, holidays=[], closures=[]),
    }
    return ExceptionFacts(
        exception_id=row["exception_id"],
        tenant_id=row["tenant_id"],
        order_id=row["order_id"],
        stage=row["stage"],
        status=status,
        severity=row.get("severity"),
        opened_at=row.get("opened_at"),
        facts=facts,
    )


def load_exception_facts(
    conn: sa.Connection,
    schema: str = "marts",
    *,
    raw_schema: str = "raw",
    reference_schema: str = "reference",
    reference: NarrativeReference | None = None,
    exception_ids: Iterable[str] | None = None,
) -> list[ExceptionFacts]:
    """Facts for every exception in ``<schema>.fct_sla_exceptions`` (or only ``exception_ids``).

    Reads ``fct_sla_exceptions``, ``fct_sla_evaluations`` and ``fct_orders`` from ``schema`` and the event
    timeline (type, time, source: never the payload) from ``<raw_schema>.order_events``, and the calendar days the
    clocks crossed from ``<reference_schema>.warehouse_calendar`` (one query each)."""
    marts, raw = plain_schema(schema), plain_schema(raw_schema)
    ref = reference or NarrativeReference.load()
    ids = list(exception_ids) if exception_ids is not None else None
    rows = (
        conn.execute(
            sa.text(
                f"""
            select e.exception_id, e.tenant_id, e.order_id, e.stage,
                   -- the SLA status (late / overdue / at_risk), not the exception's lifecycle (open, resolved)
                   coalesce(v.status, e.status) as status, e.severity, e.reason_code,
                   e.opened_at, e.resolved_at, e.minutes_late,
                   v.policy_id, v.policy_version, v.started_at, v.due_at, v.ended_at,
                   o.warehouse_id, o.carrier, o.service_level
            from {marts}.fct_sla_exceptions e
            left join {marts}.fct_sla_evaluations v
              on v.tenant_id = e.tenant_id and v.order_id = e.order_id and v.stage = e.stage
            left join {marts}.fct_orders o on o.tenant_id = e.tenant_id and o.order_id = e.order_id
            where (cast(:ids as text[]) is null or e.exception_id = any(cast(:ids as text[])))
              and coalesce(v.status, e.status) in ('late', 'overdue', 'at_risk')
            order by e.exception_id
            """
            ),
            {"ids": ids},
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    tenants = [r["tenant_id"] for r in rows]
    orders = [r["order_id"] for r in rows]
    events = (
        conn.execute(
            sa.text(
                f"""
            select distinct ev.tenant_id, ev.order_id, ev.event_type, ev.occurred_at, ev.source
            from {raw}.order_events ev
            join (select distinct * from unnest(cast(:t as text[]), cast(:o as text[])) as k(tenant_id,
            order_id)) k
              on k.tenant_id = ev.tenant_id and k.order_id = ev.order_id
            order by ev.tenant_id, ev.order_id, ev.occurred_at, ev.event_type, ev.source
            """
            ),
            {"t": tenants, "o": orders},
        )
        .mappings()
        .all()
    )
    timelines: dict[tuple[str, str], list[dict]] = {}
    for e in events:
        timelines.setdefault((e["tenant_id"], e["order_id"]), []).append(dict(e))
    spans = (calendar_span(dict(r), ref) for r in rows)
    calendar = load_calendar(conn, (s for s in spans if s is not None), reference_schema)
    return [
        build_facts(dict(r), timelines.get((r["tenant_id"], r["order_id"]), [])[:TIMELINE_LIMIT], ref, calendar)
        for r in rows
    ]
