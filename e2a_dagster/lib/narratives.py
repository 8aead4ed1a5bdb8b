"""Exception narratives: facts → (LLM or template) → validated, grounded notes in
``actions.exception_narratives``.

- **Facts** are built from whitelisted columns only (the SLA marts, the order's milestones, event *types and
  times*, reference data). Event payloads and attributes, which may hold customer PII, are never read: no
  PII can reach a prompt by construction.
- **Generation** happens only for new or changed inputs (``input_hash`` = facts + prompt version + model).
- **Trust nothing**: LLM output is parsed against a schema, then grounded (right order id, every number,
  date and time present in the facts, no internal terms in the client note). Any failure → the template
  note, with the reason in ``status`` (``fallback:<code>``) and ``status_detail``. Nothing here fails the
  pipeline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from e2a_dagster.lib.clock import now as clock_now
from e2a_dagster.lib.llm import LLMClient, LLMConfig, LLMError
from e2a_dagster.lib.llm_guard import CircuitBreaker, Clock, TokenBudget, estimate_tokens
from e2a_dagster.lib.prompts import Prompt
from e2a_dagster.lib.reference import is_open, reference_rows
from e2a_dagster.lib.settings import reference_dir

log = logging.getLogger(__name__)

TEMPLATE_VERSION = "template@1"
LIMITS = {"ops_note": 700, "client_note": 450}
SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2}
STATUS_RANK = {"overdue": 0, "late": 1, "at_risk": 2}
# Fallbacks caused by the call, not by the input: the next run tries the LLM again for the same input.
TRANSIENT = ("fallback:budget_exhausted", "fallback:breaker_open", "fallback:llm_")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class NarrativeReference:
    """The reference data narratives need, read from ``seeds/`` (the files dbt seeds)."""

    tenants: dict[str, dict[str, str]]
    warehouses: dict[str, dict[str, str]]
    policies: dict[tuple[str, int], dict[str, str]]
    reason_codes: dict[str, dict[str, str]]
    calendar_exceptions: dict[tuple[str, date], dict[str, str]]
    transit_days: dict[tuple[str, str], int]

    @classmethod
    def load(cls, seeds_dir: Path | None = None) -> NarrativeReference:
        seeds_dir = seeds_dir or reference_dir()
        rows = {
            name: reference_rows(f"{name}.csv", seeds_dir)
            for name in (
                "tenants",
                "warehouses",
                "sla_policies",
                "reason_codes",
                "calendar_exceptions",
                "carrier_services",
            )
        }
        return cls(
            tenants={r["tenant_id"]: r for r in rows["tenants"]},
            warehouses={r["warehouse_id"]: r for r in rows["warehouses"]},
            policies={(r["policy_id"], int(r["policy_version"])): r for r in rows["sla_policies"]},
            reason_codes={r["reason_code"]: r for r in rows["reason_codes"]},
            calendar_exceptions={
                (r["warehouse_id"], date.fromisoformat(r["local_date"])): r for r in rows["calendar_exceptions"]
            },
            transit_days={(r["carrier"], r["service_level"]): int(r["transit_days"]) for r in rows["carrier_services"]},
        )

    def labels_for(self, stage: str) -> list[str]:
        return sorted(code for code, r in self.reason_codes.items() if r["stage"] in (stage, "*"))

    def policy_ids(self) -> set[str]:
        return {pid for pid, _ in self.policies}

    def transit(self, carrier: str | None, service_level: str | None) -> int | None:
        level = service_level or "ground"
        return self.transit_days.get((carrier or "*", level)) or self.transit_days.get(("*", level))


# ----------------------------------------------------------------------------------------------------
# Facts


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


def calendar_facts(
    warehouse: dict[str, str],
    start: datetime | None,
    end: datetime | None,
    ref: NarrativeReference,
    stage: str,
) -> dict[str, Any]:
    """The calendar facts the clock crossed between ``start`` and ``end``: weekends, holidays, closures, and
    whether the clock started after the day's cutoff."""
    if start is None or end is None:
        return {"weekend_crossed": None, "holidays": [], "closures": [], "started_after_cutoff": None}
    zone = ZoneInfo(warehouse["time_zone"])
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    if (last - first).days > 60:  # a runaway range says nothing useful
        last = first + timedelta(days=60)
    working = {int(d) for d in warehouse["working_days"].split("|") if d}
    calendar = holidays_lib.country_holidays(
        warehouse["country"],
        subdiv=warehouse.get("subdivision") or None,
        years=range(first.year, last.year + 1),
    )
    weekend, found, closures = False, [], []
    day = first
    while day <= last:
        override = ref.calendar_exceptions.get((warehouse["warehouse_id"], day))
        if override is not None and not is_open(override):
            closures.append({"date": day.isoformat(), "reason": override["reason"]})
        elif day in calendar and override is None:
            found.append({"date": day.isoformat(), "name": calendar.get(day)})
        if day.isoweekday() not in working:
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


def build_facts(row: dict[str, Any], timeline: list[dict[str, Any]], ref: NarrativeReference) -> ExceptionFacts:
    """The prompt context of one exception. Only whitelisted, PII-free fields go in."""
    tenant = ref.tenants.get(row["tenant_id"], {})
    warehouse_id = row.get("warehouse_id") or tenant.get("default_warehouse_id")
    warehouse = ref.warehouses.get(warehouse_id or "", {})
    zone = ZoneInfo(warehouse.get("time_zone") or tenant.get("time_zone") or "UTC")
    version = int(row["policy_version"]) if row.get("policy_version") is not None else None
    policy = ref.policies.get((row.get("policy_id") or "", version or 0))
    status = row["status"]
    minutes_late = row.get("minutes_late")
    # An open (overdue) exception's minutes grow every build: keep them out of the facts so the input hash,
    # and
    # with it the narrative, changes only when something meaningful does (status, severity, a new event).
    minutes_late = None if status != "late" or minutes_late is None else round(float(minutes_late))
    end = row.get("ended_at") or row.get("due_at")
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
        "calendar": calendar_facts(warehouse, row.get("started_at"), end, ref, row["stage"])
        if warehouse
        else {"weekend_crossed": None, "holidays": [], "closures": [], "started_after_cutoff": None},
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


def _schema(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain schema name: {name!r}")
    return name


TIMELINE_LIMIT = 40


def load_exception_facts(
    conn: sa.Connection,
    schema: str = "marts",
    *,
    raw_schema: str = "raw",
    reference: NarrativeReference | None = None,
    exception_ids: Iterable[str] | None = None,
) -> list[ExceptionFacts]:
    """Facts for every exception in ``<schema>.fct_sla_exceptions`` (or only ``exception_ids``).

    Reads ``fct_sla_exceptions``, ``fct_sla_evaluations`` and ``fct_orders`` from ``schema`` and the event
    timeline (type, time, source: never the payload) from ``<raw_schema>.order_events``."""
    marts, raw = _schema(schema), _schema(raw_schema)
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
    return [
        build_facts(dict(r), timelines.get((r["tenant_id"], r["order_id"]), [])[:TIMELINE_LIMIT], ref) for r in rows
    ]


def input_hash(facts: dict[str, Any], prompt_version: str, model: str | None) -> str:
    blob = json.dumps(
        {"facts": facts, "prompt": prompt_version, "template": TEMPLATE_VERSION, "model": model},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------
# Template narratives


@dataclass(frozen=True)
class Draft:
    label: str
    ops_note: str
    client_note: str
    confidence: float | None = None


STAGE_NOUN = {"pick": "picking", "pack": "packing", "ship": "hand-over to the carrier", "deliver": "delivery"}
NEXT_ACTION = {
    ("pick", "late"): "review pick capacity for the wave that held it and confirm stock at the pick location",
    ("pick", "overdue"): "pick it now, or escalate to the shift lead if stock is missing",
    ("pick", "at_risk"): "put it in the next pick wave",
    ("pack", "late"): "check the pack-station queue at the time it waited",
    ("pack", "overdue"): "move it to the front of the pack queue",
    ("pack", "at_risk"): "pack it next",
    ("ship", "late"): "check why it missed the carrier pickup and whether the pickup window still fits",
    ("ship", "overdue"): "book it on the next carrier pickup and tell customer service",
    ("ship", "at_risk"): "get it labelled and staged before closing",
    ("deliver", "late"): "file a transit claim with the carrier if the contract allows",
    ("deliver", "overdue"): "open a trace with the carrier and tell customer service",
    ("deliver", "at_risk"): "watch the tracking; nothing to do yet",
}


def _date_part(local: str | None) -> str | None:
    """'Mon 2026-03-02 09:05' → '2026-03-02'."""
    return local.split(" ")[1] if local else None


def _rule_text(facts: dict[str, Any]) -> str:
    rule = facts["rule"]
    kind = rule.get("type")
    if kind == "duration" and rule.get("allowance_business_minutes") is not None:
        text = f"{rule['allowance_business_minutes']} business minutes"
    elif kind == "cutoff":
        text = f"cutoff {rule.get('cutoff_local')}, out by closing {rule.get('closing_local')}"
    elif kind == "transit_days" and rule.get("transit_carrier_business_days") is not None:
        text = f"{rule['transit_carrier_business_days']} carrier business days"
    else:
        text = "rule unknown"
    if rule.get("policy_id"):
        text += f" (policy {rule['policy_id']} v{rule['policy_version']})"
    return text


def _calendar_text(facts: dict[str, Any]) -> str:
    cal = facts["calendar"]
    parts = []
    if cal.get("started_after_cutoff"):
        parts.append("the clock started after the cutoff")
    if cal.get("weekend_crossed"):
        parts.append("the clock crossed a weekend")
    parts += [f"{h['name']} ({h['date']}) was a holiday" for h in cal.get("holidays", [])]
    parts += [f"the warehouse was closed on {c['date']} ({c['reason']})" for c in cal.get("closures", [])]
    return ("Calendar: " + "; ".join(parts) + ". ") if parts else ""


def template_narrative(item: ExceptionFacts, ref: NarrativeReference) -> Draft:
    """A deterministic narrative that uses only the facts: readable for every (stage, status, severity)."""
    f = item.facts
    stage, status = f["stage"], f["status"]
    noun = STAGE_NOUN.get(stage, stage)
    wh = f["warehouse"]
    where = f"{wh['name']} ({wh['id']})" if wh.get("name") else (wh.get("id") or "the warehouse")
    where = ("from " if stage == "deliver" else "at ") + where
    severity = f" ({f['severity']})" if f.get("severity") else ""
    tz = wh.get("time_zone")
    if status == "late":
        head = (
            f"Order {item.order_id}: {noun} finished {f['minutes_late']} minutes late{severity} {where}. "
            f"Due {f['due_at_local']}, done {f['ended_at_local']} ({tz})."
        )
    elif status == "overdue":
        head = (
            f"Order {item.order_id}: {noun} is overdue{severity} {where}. Due {f['due_at_local']} ({tz}), not done yet."
        )
    else:
        head = f"Order {item.order_id}: {noun} is at risk {where}. Due {f['due_at_local']} ({tz}), not done yet."
    code = f.get("reason_code_from_events")
    label = code if code in ref.labels_for(stage) else "UNKNOWN"
    cause = (
        f"Likely cause (from the events): {ref.reason_codes[label]['label'].lower()}. "
        if label != "UNKNOWN"
        else "No cause could be derived from the events. "
    )
    carrier = f" Carrier {f['carrier']}, {f['service_level']}." if f.get("carrier") and stage == "deliver" else ""
    action = NEXT_ACTION.get((stage, status), "review the order's events")
    ops = (f"{head} Rule: {_rule_text(f)}. {_calendar_text(f)}{cause}Next: {action}.{carrier}").replace("  ", " ")

    holiday = f["calendar"]["holidays"][0]["name"] if f["calendar"].get("holidays") else None
    around = f", with the {holiday} holiday in between" if holiday else ""
    carrier_name = (f["carrier"] or "the carrier").upper() if f.get("carrier") else "the carrier"
    due_day, end_day = _date_part(f.get("due_at_local")), _date_part(f.get("ended_at_local"))
    if status == "late" and stage in ("pick", "pack"):
        client = (
            f"We are sorry: preparing order {item.order_id} took longer than we promised{around}. "
            "It is moving on to shipping now, and we are keeping a close eye on it."
        )
    elif status == "late" and stage == "ship":
        client = (
            f"We are sorry: order {item.order_id} was handed to {carrier_name} later than we promised, "
            f"on {end_day}{around}. It is on its way now."
        )
    elif status == "late":
        client = (
            f"We are sorry: order {item.order_id} arrived on {end_day}, later than the expected delivery "
            f"date of {due_day}{around}. Thank you for your patience."
        )
    elif status == "overdue" and stage == "deliver":
        client = (
            f"We are sorry: order {item.order_id} has not arrived by its expected delivery date, {due_day}. "
            f"We have asked {carrier_name} to trace it and will update you."
        )
    elif status == "overdue":
        client = (
            f"We are sorry: order {item.order_id} is taking longer than promised to leave our warehouse"
            f"{around}. We are on it and will send it out as soon as possible."
        )
    else:
        leg = "arrives" if stage == "deliver" else "leaves our warehouse"
        client = (
            f"Order {item.order_id} is still on schedule; we are watching it closely to make sure it {leg} on time."
        )
    return Draft(label=label, ops_note=ops[: LIMITS["ops_note"]], client_note=client[: LIMITS["client_note"]])


# ----------------------------------------------------------------------------------------------------
# Validation and grounding


class NarrativeRejected(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class NarrativeOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    order_id: str = Field(min_length=1, max_length=128)
    label: str = Field(pattern=r"^[A-Z][A-Z_]*$", max_length=64)
    ops_note: str = Field(min_length=20, max_length=LIMITS["ops_note"])
    client_note: str = Field(min_length=20, max_length=LIMITS["client_note"])
    confidence: float = Field(ge=0, le=1)


def parse_output(text: str, allowed_labels: list[str]) -> NarrativeOutput:
    """The model's answer as a validated object; raises ``NarrativeRejected`` (invalid_json,
    schema_violation)."""
    cleaned = text.strip()
    if cleaned.startswith("```"):  # some models fence JSON despite JSON mode
        cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", cleaned)
    try:
        data = json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise NarrativeRejected("invalid_json", f"not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(data, dict):
        raise NarrativeRejected("schema_violation", "not a JSON object")
    if isinstance(data.get("confidence"), int) and not isinstance(data.get("confidence"), bool):
        data["confidence"] = float(data["confidence"])
    try:
        out = NarrativeOutput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "object"
        raise NarrativeRejected("schema_violation", f"{where}: {first['msg']}") from None
    if out.label not in allowed_labels:
        raise NarrativeRejected("schema_violation", f"label {out.label!r} is not one of {allowed_labels}")
    return out


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?!\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
INTERNAL_TERMS = (
    "sla",
    "slas",
    "policy",
    "policies",
    "policy id",
    "credit",
    "credits",
    "credited",
    "refund",
    "refunds",
    "compensation",
    "staff",
    "staffing",
    "understaffed",
    "employee",
    "employees",
    "worker",
    "workers",
    "picker",
    "pickers",
    "packer",
    "packers",
    "shift",
    "shifts",
    "shift lead",
    "severity",
    "allowance",
    "business minutes",
    "breach",
    "breached",
    "escalate",
    "escalated",
    "escalation",
    "cutoff",
    "cut-off",
    "at_risk",
    "reason code",
    "internal",
    "backlog",
    "wave",
)


def _norm_number(token: str) -> str:
    try:
        value = Decimal(token)
    except InvalidOperation:
        return token
    normal = value.normalize()
    return format(normal, "f") if normal == normal.to_integral() else str(normal)


def _tokens(text: str) -> tuple[set[str], set[str], set[str]]:
    """(dates, times, numbers) in ``text``, normalised; dates and times are not also counted as numbers."""
    dates = set(_DATE.findall(text))
    text = _DATE.sub(" ", text)
    times = {f"{int(h)}:{m}" for h, m in _TIME.findall(text)}
    text = _TIME.sub(" ", text)
    numbers = {_norm_number(n) for n in _NUMBER.findall(text)}
    return dates, times, numbers


def grounded_tokens(facts: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    dates, times, numbers = _tokens(json.dumps(facts, ensure_ascii=False))
    # Parts of dates are fair game too ("2 March", "March 2026").
    for d in list(dates):
        numbers.update(_norm_number(p) for p in d.split("-"))
    for t in list(times):
        numbers.update(_norm_number(p) for p in t.split(":"))
    return dates, times, numbers


def _identifiers(facts: dict[str, Any], ref: NarrativeReference) -> list[str]:
    ids = [
        facts["order_id"],
        facts["tenant"]["id"],
        facts["warehouse"].get("id"),
        facts.get("carrier"),
        facts["rule"].get("policy_id"),
        *ref.policy_ids(),
    ]
    return sorted({i for i in ids if i}, key=len, reverse=True)


def check_grounding(out: NarrativeOutput, item: ExceptionFacts, ref: NarrativeReference) -> None:
    """Raises ``NarrativeRejected`` (wrong_order_id, ungrounded_number, internal_term) unless the notes
    hold."""
    if out.order_id.strip() != item.order_id:
        raise NarrativeRejected(
            "wrong_order_id", f"answer is about {out.order_id!r}, the facts about {item.order_id!r}"
        )
    if out.label not in ref.labels_for(item.stage):
        raise NarrativeRejected("schema_violation", f"label {out.label!r} does not apply to stage {item.stage}")
    dates, times, numbers = grounded_tokens(item.facts)
    identifiers = _identifiers(item.facts, ref)
    for name, note in (("ops_note", out.ops_note), ("client_note", out.client_note)):
        scrubbed = note
        for ident in identifiers:
            scrubbed = re.sub(re.escape(ident), " ", scrubbed, flags=re.IGNORECASE)
        n_dates, n_times, n_numbers = _tokens(scrubbed)
        for kind, found, allowed in (
            ("date", n_dates, dates),
            ("time", n_times, times),
            ("number", n_numbers, numbers),
        ):
            bad = sorted(found - allowed)
            if bad:
                raise NarrativeRejected("ungrounded_number", f"{name} has {kind} {bad[0]} not in the facts")
    lowered = out.client_note.lower()
    internal = [
        *INTERNAL_TERMS,
        *(p.lower() for p in ref.policy_ids()),
        *(c.lower() for c in ref.reason_codes),
        (item.facts["warehouse"].get("id") or "").lower(),
    ]
    for term in internal:
        if term and re.search(rf"(?<![a-z0-9_]){re.escape(term)}(?![a-z0-9_])", lowered):
            raise NarrativeRejected("internal_term", f"client_note uses the internal term {term!r}")


# ----------------------------------------------------------------------------------------------------
# Generation


@dataclass
class NarrativeRow:
    item: ExceptionFacts
    input_hash: str
    draft: Draft
    generator: str
    status: str
    status_detail: str | None = None
    model: str | None = None
    prompt_version: str = TEMPLATE_VERSION
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_estimate: Decimal | None = None

    @property
    def tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    def params(self) -> dict[str, Any]:
        i, d = self.item, self.draft
        return {
            "exception_id": i.exception_id,
            "input_hash": self.input_hash,
            "tenant_id": i.tenant_id,
            "order_id": i.order_id,
            "stage": i.stage,
            "exception_status": i.status,
            "severity": i.severity,
            "label": d.label,
            "ops_note": d.ops_note,
            "client_note": d.client_note,
            "confidence": d.confidence,
            "generator": self.generator,
            "status": self.status,
            "status_detail": self.status_detail,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_estimate": self.cost_estimate,
            "facts": json.dumps(i.facts, sort_keys=True),
        }


@dataclass
class NarrativeSummary:
    exceptions: int = 0
    cached: int = 0
    written: int = 0
    llm: int = 0
    template: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    cost_estimate: Decimal | None = None
    rows: list[NarrativeRow] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)  # exception_id -> input_hash of its facts now
    retired: int = 0  # narratives no longer current (exception gone, or facts changed)

    def add(self, row: NarrativeRow) -> None:
        self.rows.append(row)
        self.written += 1
        if row.generator == "llm":
            self.llm += 1
        else:
            self.template += 1
        self.statuses[row.status] = self.statuses.get(row.status, 0) + 1
        self.tokens += row.tokens or 0
        if row.cost_estimate is not None:
            self.cost_estimate = (self.cost_estimate or Decimal(0)) + row.cost_estimate


_UPSERT = """
    insert into {actions}.exception_narratives
      (exception_id, input_hash, tenant_id, order_id, stage, exception_status, severity, label, ops_note,
       client_note, confidence, generator, status, status_detail, model, prompt_version, tokens,
       prompt_tokens,
       completion_tokens, cost_estimate, facts)
    values
      (:exception_id, :input_hash, :tenant_id, :order_id, :stage, :exception_status, :severity, :label,
       :ops_note, :client_note, :confidence, :generator, :status, :status_detail, :model, :prompt_version,
       :tokens, :prompt_tokens, :completion_tokens, :cost_estimate, cast(:facts as jsonb))
    on conflict (exception_id, input_hash) do update set
       label = excluded.label, ops_note = excluded.ops_note, client_note = excluded.client_note,
       confidence = excluded.confidence, generator = excluded.generator, status = excluded.status,
       status_detail = excluded.status_detail, model = excluded.model, tokens = excluded.tokens,
       prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
       cost_estimate = excluded.cost_estimate, created_at = now()
    """


def _is_transient(status: str) -> bool:
    return any(status.startswith(prefix) for prefix in TRANSIENT)


class NarrativeWriter:
    """Writes narratives for a batch of exceptions. ``llm`` None = templates only (``status = template``)."""

    def __init__(
        self,
        engine: sa.Engine,
        ref: NarrativeReference,
        prompt: Prompt,
        *,
        llm: LLMClient | None = None,
        budget: TokenBudget | None = None,
        breaker: CircuitBreaker | None = None,
        log_fn: Callable[[str], None] | None = None,
        actions_schema: str = "actions",
    ):
        self.engine = engine
        self.actions = _schema(actions_schema)
        self.ref = ref
        self.prompt = prompt
        self.llm = llm
        self.budget = budget
        self.breaker = breaker
        self.log = log_fn or log.info

    @property
    def model(self) -> str | None:
        return self.llm.config.model if self.llm else None

    def _hash(self, item: ExceptionFacts) -> str:
        return input_hash(item.facts, self.prompt.version if self.llm else TEMPLATE_VERSION, self.model)

    def _existing(self, items: list[ExceptionFacts]) -> dict[tuple[str, str], str]:
        if not items:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"select exception_id, input_hash, status from {self.actions}.exception_narratives "
                    "where exception_id = any(cast(:ids as text[]))"
                ),
                {"ids": [i.exception_id for i in items]},
            ).all()
        return {(r[0], r[1]): r[2] for r in rows}

    def _fallback(self, item: ExceptionFacts, digest: str, code: str, detail: str | None, **extra) -> NarrativeRow:
        return NarrativeRow(
            item,
            digest,
            template_narrative(item, self.ref),
            "template",
            f"fallback:{code}",
            detail,
            model=self.model,
            prompt_version=self.prompt.version,
            **extra,
        )

    def _generate(self, item: ExceptionFacts, digest: str, system: str, user: str, reserved: int) -> NarrativeRow:
        assert self.llm is not None
        if self.breaker is not None and not self.breaker.allow():
            if self.budget:
                self.budget.settle(item.tenant_id, reserved, 0)
            return self._fallback(item, digest, "breaker_open", "circuit breaker open: LLM calls paused")
        try:
            completion = self.llm.complete(system, user, max_tokens=self.prompt.max_tokens)
        except LLMError as exc:
            if self.breaker is not None:
                self.breaker.record_failure(str(exc))
            if self.budget:
                self.budget.settle(item.tenant_id, reserved, 0)
            return self._fallback(item, digest, f"llm_{exc.kind}", f"{exc} (after {exc.attempts} attempt(s))")
        if self.breaker is not None:
            self.breaker.record_success()
        if self.budget:
            self.budget.settle(item.tenant_id, reserved, completion.tokens)
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_estimate": self.llm.config.cost(completion.prompt_tokens, completion.completion_tokens),
        }
        labels = self.ref.labels_for(item.stage)
        try:
            out = parse_output(completion.text, labels)
            check_grounding(out, item, self.ref)
        except NarrativeRejected as exc:
            row = self._fallback(item, digest, exc.code, exc.detail, **usage)
            row.model = completion.model
            return row
        draft = Draft(
            label=out.label,
            ops_note=out.ops_note,
            client_note=out.client_note,
            confidence=round(out.confidence, 3),
        )
        return NarrativeRow(
            item,
            digest,
            draft,
            "llm",
            "ok",
            None,
            model=completion.model,
            prompt_version=self.prompt.version,
            **usage,
        )

    def run(self, items: list[ExceptionFacts]) -> NarrativeSummary:
        summary = NarrativeSummary(exceptions=len(items))
        existing = self._existing(items)
        todo: list[tuple[ExceptionFacts, str]] = []
        for item in sorted(items, key=lambda i: i.priority):
            digest = self._hash(item)
            summary.current[item.exception_id] = digest
            status = existing.get((item.exception_id, digest))
            if status is not None and not _is_transient(status):
                summary.cached += 1
                continue
            todo.append((item, digest))
        if self.llm is None:
            for item, digest in todo:
                self._write(
                    NarrativeRow(
                        item,
                        digest,
                        template_narrative(item, self.ref),
                        "template",
                        "template",
                        "no LLM configured (E2A_LLM_MODEL and E2A_LLM_BASE_URL/API_KEY unset)",
                    ),
                    summary,
                )
            return summary
        # Budget is reserved here, in priority order, so critical and major exceptions get it first; the calls
        # then run on a bounded pool (the client bounds concurrency too).
        with ThreadPoolExecutor(max_workers=max(1, self.llm.config.concurrency)) as pool:
            futures = []
            for item, digest in todo:
                system, user = self.prompt.render(
                    facts=item.facts, allowed_labels=self.ref.labels_for(item.stage), limits=LIMITS
                )
                reserved = estimate_tokens(system + user) + self.prompt.max_tokens
                if self.budget is not None and not self.budget.reserve(item.tenant_id, reserved):
                    self._write(
                        self._fallback(
                            item,
                            digest,
                            "budget_exhausted",
                            f"daily token budget of tenant {item.tenant_id} used up",
                        ),
                        summary,
                    )
                    continue
                futures.append((pool.submit(self._generate, item, digest, system, user, reserved), item, digest))
            for future, item, digest in futures:
                try:
                    row = future.result()
                except Exception as exc:  # never fail the pipeline over one narrative
                    log.exception("narrative generation failed")
                    row = self._fallback(item, digest, "internal_error", repr(exc)[:300])
                self._write(row, summary)
        return summary

    def _write(self, row: NarrativeRow, summary: NarrativeSummary) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(_UPSERT.format(actions=self.actions)), row.params())
        summary.add(row)


def mark_current(
    engine: sa.Engine, current: dict[str, str], *, retire_absent: bool, actions_schema: str = "actions"
) -> int:
    """Make the narrative of every exception's current facts (``current``: exception_id -> input_hash) the
    current one (``actions.exception_narratives_current``); the other versions of those exceptions stop being
    current, and with ``retire_absent`` so do the narratives of exceptions not in ``current`` (gone from the
    marts). Nothing is deleted: ``retired_at`` says when a narrative stopped being current. Returns how many
    did."""
    actions = _schema(actions_schema)
    ids, hashes = list(current), [current[i] for i in current]
    absent = "or not (n.exception_id = any(cast(:ids as text[])))" if retire_absent else ""
    with engine.begin() as conn:
        conn.execute(sa.text(f"lock table {actions}.exception_narratives in share row exclusive mode"))
        retired = conn.execute(
            sa.text(
                f"""
                update {actions}.exception_narratives n
                   set is_current = false, retired_at = now()
                 where n.is_current
                   and ((n.exception_id, n.input_hash) not in (
                            select * from unnest(cast(:ids as text[]), cast(:hashes as text[])))
                        and n.exception_id = any(cast(:ids as text[]))
                        {absent})
                """
            ),
            {"ids": ids, "hashes": hashes},
        ).rowcount
        conn.execute(
            sa.text(
                f"""
                update {actions}.exception_narratives n
                   set is_current = true, retired_at = null
                  from unnest(cast(:ids as text[]), cast(:hashes as text[])) as c(exception_id, input_hash)
                 where n.exception_id = c.exception_id and n.input_hash = c.input_hash and not n.is_current
                """
            ),
            {"ids": ids, "hashes": hashes},
        )
    return retired


def exceptions_table_exists(conn: sa.Connection, schema: str = "marts") -> bool:
    return bool(
        conn.execute(
            sa.text("select to_regclass(:t) is not null"), {"t": f"{_schema(schema)}.fct_sla_exceptions"}
        ).scalar_one()
    )


def run_narratives(
    engine: sa.Engine,
    config: LLMConfig | None,
    *,
    schema: str = "marts",
    raw_schema: str = "raw",
    actions_schema: str = "actions",
    seeds_dir: Path | None = None,
    prompt: Prompt | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
    log_fn: Callable[[str], None] | None = None,
    retire_absent: bool | None = None,
) -> NarrativeSummary:
    """Narratives for every new or changed exception in ``<schema>.fct_sla_exceptions``, written to
    ``<actions_schema>.exception_narratives``: the whole flow the ``actions/exception_narratives`` asset runs
    (and the tests drive with a fake server and a fake clock; a backtest writes templates into its own schema).

    Afterwards each exception's narrative for its current facts is the current one, and narratives of
    exceptions no longer there stop being current (``retire_absent``; default: when ``schema`` is the live
    ``marts``, whose exceptions the actions table follows, not a scratch schema)."""
    if retire_absent is None:
        retire_absent = schema == "marts"
    clock = clock or clock_now
    ref = NarrativeReference.load(seeds_dir)
    prompt = prompt or Prompt.load("exception_narrative")
    with engine.connect() as conn:
        if not exceptions_table_exists(conn, schema):
            (log_fn or log.info)(f"{schema}.fct_sla_exceptions does not exist yet: no narratives to write")
            return NarrativeSummary()
        items = load_exception_facts(conn, schema, raw_schema=raw_schema, reference=ref)
    summary = _write_narratives(engine, items, config, ref, prompt, clock, sleep, log_fn, actions_schema)
    summary.retired = mark_current(engine, summary.current, retire_absent=retire_absent, actions_schema=actions_schema)
    return summary


def _write_narratives(
    engine: sa.Engine,
    items: list[ExceptionFacts],
    config: LLMConfig | None,
    ref: NarrativeReference,
    prompt: Prompt,
    clock: Clock,
    sleep: Callable[[float], None] | None,
    log_fn: Callable[[str], None] | None,
    actions_schema: str = "actions",
) -> NarrativeSummary:
    client = budget = breaker = None
    if config is not None:
        client = LLMClient(config, sleep=sleep) if sleep else LLMClient(config)
        zones = {t: r["time_zone"] for t, r in ref.tenants.items()}
        budget = TokenBudget(engine, config.daily_tokens, zones, clock)
        breaker = CircuitBreaker(
            engine,
            config.breaker_key,
            threshold=config.breaker_threshold,
            cooldown_s=config.breaker_cooldown_s,
            clock=clock,
        )
    try:
        writer = NarrativeWriter(
            engine,
            ref,
            prompt,
            llm=client,
            budget=budget,
            breaker=breaker,
            log_fn=log_fn,
            actions_schema=actions_schema,
        )
        return writer.run(items)
    finally:
        if client is not None:
            client.close()
