"""Template narratives: a deterministic ops note and client note from the facts alone, readable for every
(stage, status, severity). Written when no LLM is configured and whenever an LLM answer is not used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from e2a_dagster.lib.explanations.facts import ExceptionFacts
from e2a_dagster.lib.explanations.reference_data import NarrativeReference

TEMPLATE_VERSION = "template@1"
LIMITS = {"ops_note": 700, "client_note": 450}


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
