"""The canonical event contract (DESIGN §4.1): a typed model, and validation that turns every fault into a
specific error code and a readable message (DESIGN §4.4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from e2a_dagster.lib.reference import Reference

ORDER_EVENTS = ("order_created", "order_paid", "order_released", "order_cancelled", "hold_placed", "hold_released")
WAREHOUSE_EVENTS = (
    "pick_started",
    "pick_completed",
    "pack_completed",
    "label_printed",
    "carrier_pickup",
    "return_received",
)
CARRIER_EVENTS = (
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "delivery_attempted",
    "delivered",
    "delivery_exception",
    "returned_to_sender",
)
EVENT_TYPES = frozenset(ORDER_EVENTS + WAREHOUSE_EVENTS + CARRIER_EVENTS)

# Column order of raw.order_events as the loader writes it (COPY).
COLUMNS = (
    "tenant_id",
    "source",
    "event_id",
    "event_type",
    "order_id",
    "occurred_at",
    "warehouse_id",
    "carrier",
    "service_level",
    "tracking_number",
    "units",
    "lines",
    "cartons",
    "postage",
    "attributes",
    "payload",
    "file_name",
    "line_number",
)
FIELDS = (
    "event_id",
    "tenant_id",
    "source",
    "event_type",
    "order_id",
    "occurred_at",
    "warehouse_id",
    "carrier",
    "service_level",
    "tracking_number",
    "units",
    "lines",
    "cartons",
    "postage",
    "attributes",
)

EventType = Literal[tuple(sorted(EVENT_TYPES))]  # type: ignore[valid-type]
Quantity = Annotated[int, Field(ge=0)]


class CanonicalEvent(BaseModel):
    """One landing-zone event. Unknown extra fields are allowed and kept in the payload."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    tenant_id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")]
    source: Annotated[str, Field(min_length=1, max_length=64)]
    event_type: EventType
    order_id: Annotated[str, Field(min_length=1, max_length=128)]
    occurred_at: AwareDatetime
    warehouse_id: Annotated[str, Field(max_length=64)] | None = None
    carrier: Annotated[str, Field(max_length=64)] | None = None
    service_level: Annotated[str, Field(max_length=64)] | None = None
    tracking_number: Annotated[str, Field(max_length=128)] | None = None
    units: Quantity | None = None
    lines: Quantity | None = None
    cartons: Quantity | None = None
    postage: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4, allow_inf_nan=False)] | None = None
    attributes: dict[str, Any] | None = None

    @field_validator("warehouse_id", "carrier", "service_level", "tracking_number", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("postage", mode="before")
    @classmethod
    def _no_float_money(cls, value: Any) -> Any:
        # Money travels as a decimal string. A JSON number is accepted only through its exact text: floats
        # never enter the arithmetic.
        if isinstance(value, float):
            return Decimal(repr(value))
        return value


@dataclass(frozen=True)
class Fault:
    code: str
    message: str


class Rejected(Exception):
    def __init__(self, faults: list[Fault]):
        self.faults = faults
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return self.faults[0].code

    @property
    def message(self) -> str:
        return "; ".join(f.message for f in self.faults)


# pydantic error type -> (our error code, how to say it)
_FIELD_ERROR_CODES = {
    "missing": "missing_field",
    "timezone_aware": "naive_timestamp",
    "datetime_parsing": "invalid_timestamp",
    "datetime_from_date_parsing": "invalid_timestamp",
    "datetime_type": "invalid_timestamp",
    "string_too_long": "field_too_long",
    "string_too_short": "missing_field",
    "literal_error": "unknown_event_type",
    "decimal_parsing": "non_numeric_amount",
    "decimal_type": "non_numeric_amount",
    "finite_number": "non_numeric_amount",
    "decimal_max_digits": "invalid_amount",
    "decimal_max_places": "invalid_amount",
    "decimal_whole_digits": "invalid_amount",
}


def _code_for(err: dict[str, Any]) -> str:
    kind = err["type"]
    field = err["loc"][0] if err["loc"] else None
    if kind == "json_invalid" or kind == "model_type":
        return "malformed_json"
    if kind == "string_pattern_mismatch" and field == "tenant_id":
        return "invalid_tenant_id"
    if kind in ("greater_than_equal",):
        return "negative_amount" if field == "postage" else "negative_quantity"
    return _FIELD_ERROR_CODES.get(kind, "invalid_field")


def _message_for(err: dict[str, Any], code: str) -> str:
    field = ".".join(str(p) for p in err["loc"]) or "record"
    value = err.get("input")
    if code == "missing_field":
        return f"{field}: required field is missing or empty"
    if code == "naive_timestamp":
        return f"{field}: timestamp {value!r} has no UTC offset (send e.g. 2026-03-01T09:30:00-05:00)"
    if code == "unknown_event_type":
        return f"{field}: unknown event type {value!r}"
    if code == "malformed_json":
        return f"not a JSON object: {err['msg']}"
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{field}: {err['msg']} (got {shown})"


def faults_from_validation(exc: ValidationError) -> list[Fault]:
    faults = []
    for err in exc.errors(include_url=False):
        code = _code_for(err)
        faults.append(Fault(code, _message_for(err, code)))
    return faults


def check_references(event: CanonicalEvent, reference: Reference) -> list[Fault]:
    """Faults that need the reference data in ``seeds/``."""
    faults: list[Fault] = []
    if event.tenant_id not in reference.tenants:
        faults.append(
            Fault("unknown_tenant", f"tenant_id: unknown tenant {event.tenant_id!r} (not in seeds/tenants.csv)")
        )
    if event.warehouse_id is None and event.event_type in WAREHOUSE_EVENTS and event.source == "wms":
        faults.append(Fault("missing_warehouse", f"warehouse_id: required on wms event {event.event_type!r}"))
    elif event.warehouse_id is not None and event.warehouse_id not in reference.warehouses:
        faults.append(
            Fault(
                "unknown_warehouse",
                f"warehouse_id: unknown warehouse {event.warehouse_id!r} (not in seeds/warehouses.csv)",
            )
        )
    if event.service_level is not None and event.service_level.lower() not in reference.service_levels:
        faults.append(
            Fault(
                "unknown_service_level",
                f"service_level: unknown service level {event.service_level!r} "
                f"(known: {', '.join(sorted(reference.service_levels))})",
            )
        )
    return faults


_NUL_ESCAPE = "\\u0000"


def parse_json_line(line: str | bytes, reference: Reference) -> tuple[CanonicalEvent, str]:
    """Validate one JSONL line; returns the event and the payload text to store. Raises ``Rejected``."""
    text = line.decode("utf-8", errors="strict") if isinstance(line, bytes) else line
    if _NUL_ESCAPE in text or "\x00" in text:
        raise Rejected([Fault("invalid_text", "record contains a NUL character, which PostgreSQL text cannot hold")])
    try:
        event = CanonicalEvent.model_validate_json(text)
    except ValidationError as exc:
        raise Rejected(faults_from_validation(exc)) from None
    faults = check_references(event, reference)
    if faults:
        raise Rejected(faults)
    return event, text


def parse_record(record: dict[str, Any], reference: Reference) -> CanonicalEvent:
    """Validate one record given as a mapping (a CSV row, a replayed record). Raises ``Rejected``."""
    if any(isinstance(v, str) and "\x00" in v for v in record.values()):
        raise Rejected([Fault("invalid_text", "record contains a NUL character, which PostgreSQL text cannot hold")])
    try:
        event = CanonicalEvent.model_validate(record)
    except ValidationError as exc:
        raise Rejected(faults_from_validation(exc)) from None
    faults = check_references(event, reference)
    if faults:
        raise Rejected(faults)
    return event


def csv_record(row: dict[str, str | None]) -> dict[str, Any]:
    """A CSV row as the record it stands for: empty cells are absent, ``attributes`` is JSON text."""
    record: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
    attributes = record.get("attributes")
    if isinstance(attributes, str):
        try:
            record["attributes"] = json.loads(attributes)
        except json.JSONDecodeError as exc:
            raise Rejected([Fault("invalid_field", f"attributes: not valid JSON ({exc.msg})")]) from None
    return record


def to_row(event: CanonicalEvent, payload: str, file_name: str, line_number: int) -> tuple:
    """The raw.order_events row (in ``COLUMNS`` order) for a validated event."""
    return (
        event.tenant_id,
        event.source,
        event.event_id,
        event.event_type,
        event.order_id,
        event.occurred_at,
        event.warehouse_id,
        event.carrier,
        event.service_level.lower() if event.service_level else None,
        event.tracking_number,
        event.units,
        event.lines,
        event.cartons,
        event.postage,
        json.dumps(event.attributes) if event.attributes is not None else None,
        payload,
        file_name,
        line_number,
    )
