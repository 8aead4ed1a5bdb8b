"""Trust nothing: the LLM's answer is parsed against a schema, then grounded in the facts (right order id, every
number, date and time present in the facts, no internal terms in the client note). A failure raises
``NarrativeRejected`` with the code the writer stores as ``fallback:<code>``."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from e2a_dagster.lib.explanations.facts import ExceptionFacts
from e2a_dagster.lib.explanations.reference_data import NarrativeReference
from e2a_dagster.lib.explanations.templates import LIMITS


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
