"""The canonical event contract (DESIGN §4.1): a typed model, and validation that turns every fault into a
specific error code and a readable message (DESIGN §4.4)."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from e2a_dagster.lib.core.reference import Reference

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
    "promised_ship_by",
    "promised_deliver_by",
    "attributes",
)
# Column order of raw.order_events as the loader writes it (COPY): the fields, then where the record came from.
COLUMNS = (*FIELDS, "payload", "file_name", "line_number")
# to_row's reading of an event in FIELDS order (one C call: the loader's hot path)
_FIELD_VALUES = operator.attrgetter(*FIELDS)
_SERVICE_LEVEL, _ATTRIBUTES = FIELDS.index("service_level"), FIELDS.index("attributes")

EventType = Literal[tuple(sorted(EVENT_TYPES))]  # type: ignore[valid-type]
# A JSON integer (DESIGN §4.1): never a boolean, a float or a numeric string (CSV cells are turned into integers
# by ``csv_record`` when they are written as one).
Quantity = Annotated[int, Field(ge=0, le=2_147_483_647, strict=True)]
QUANTITIES = ("units", "lines", "cartons")
TEXT_FIELDS = (
    "event_id",
    "tenant_id",
    "source",
    "event_type",
    "order_id",
    "warehouse_id",
    "carrier",
    "service_level",
    "tracking_number",
)
_INTEGER = re.compile(r"^[+-]?\d+$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The order's own promise fields (read on order_created / order_paid / order_released: int_orders_milestoned).
PROMISES = ("promised_ship_by", "promised_deliver_by")
_DATE_TIME_SEPARATORS = ("T", "t", " ")


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_C0 = re.compile(r"[\x00-\x08\x0a-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NOT_PLAIN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def text_field_faults(record: Any) -> list[Fault]:
    """Control characters (C0 but tab, DEL, C1) and unpaired surrogates in the canonical text fields of a record
    (ids, codes, tracking number; ``attributes`` are free-form). Only called when the record's text holds
    something of the kind, so the common record pays one regex search."""
    if not isinstance(record, dict) or not any(
        isinstance(value, str) and _NOT_PLAIN.search(value) for value in map(record.get, TEXT_FIELDS)
    ):
        return []
    faults = []
    for name in TEXT_FIELDS:
        value = record.get(name)
        if not isinstance(value, str):
            continue
        if _SURROGATE.search(value):
            faults.append(Fault("invalid_text", f"{name}: contains an unpaired UTF-16 surrogate (got {_shown(value)})"))
            continue
        found = control_characters(value)
        if found:
            faults.append(
                Fault(
                    "control_character",
                    f"{name}: contains control characters ({', '.join(found)}) (got {_shown(value)})",
                )
            )
    return faults


def control_characters(text: str, pattern: re.Pattern = _CONTROL) -> list[str]:
    """The control characters in ``text`` (C0 but tab, DEL, C1) as escapes, each once, in order of appearance."""
    if pattern.search(text) is None:  # the common case, at C speed
        return []
    return list(dict.fromkeys(f"\\x{ord(ch):02x}" for ch in pattern.findall(text)))


def printable(data: bytes | str) -> str:
    """A readable rendering of a record (``ops.rejected_records.raw``): valid UTF-8 stays as it is but for control
    characters other than tab and line feed, which become ``\\xNN``; bytes that are not UTF-8 become ``\\xNN``
    too (the exact bytes are kept beside, in ``raw_bytes``). Text without such characters is unchanged."""
    text = data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # an unpaired surrogate (from a JSON escape): not encodable text
            out.append(f"\\u{code:04x}")
        elif (code < 0x20 and ch not in "\t\n") or code == 0x7F or 0x80 <= code <= 0x9F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def normalize_promise(value: Any) -> str | None:
    """An order-level promise as stored: an ISO-8601 instant with an offset, as that instant in UTC
    (``2026-03-06T22:00:00+00:00``), or a date ``YYYY-MM-DD`` as it is (24:00 at the end of that day in the
    warehouse's time zone, resolved in dbt: ``macros/promise_instant.sql``); empty is none. Anything else raises
    ``PydanticCustomError`` (``invalid_timestamp`` / ``naive_timestamp`` in the DLQ)."""
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise PydanticCustomError(
            "promise_not_text",
            "must be an ISO-8601 timestamp with a UTC offset (2026-03-02T17:00:00-05:00) or a date (2026-03-02)",
        )
    text = value.strip()
    if _DATE_ONLY.match(text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise PydanticCustomError("promise_invalid", "is not a calendar date (send e.g. 2026-03-02)") from None
    if text[4:5] != "-" or text[10:11] not in _DATE_TIME_SEPARATORS or not text[:4].isdigit():
        raise PydanticCustomError(
            "promise_invalid",
            "is not an ISO-8601 timestamp or date (send e.g. 2026-03-02T17:00:00-05:00 or 2026-03-02)",
        )
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError(
            "promise_invalid", "is not an ISO-8601 timestamp (send e.g. 2026-03-02T17:00:00-05:00)"
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise PydanticCustomError(
            "promise_naive",
            "has no UTC offset (send e.g. 2026-03-02T17:00:00-05:00, or a date 2026-03-02 for the end of "
            "that day at the warehouse)",
        )
    if not 2000 <= instant.astimezone(UTC).year <= 9998:
        raise PydanticCustomError("promise_invalid", "is outside the years 2000 to 9998")
    return instant.astimezone(UTC).isoformat()


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
    # An order-level promise: ISO-8601 with a UTC offset (kept as that instant, in UTC), or a date YYYY-MM-DD
    # (24:00 at the end of that day in the warehouse's time zone, resolved in dbt where the warehouse is known).
    promised_ship_by: str | None = None
    promised_deliver_by: str | None = None
    attributes: dict[str, Any] | None = None

    @field_validator("promised_ship_by", "promised_deliver_by", mode="before")
    @classmethod
    def _promise(cls, value: Any) -> Any:
        return normalize_promise(value)

    @field_validator("warehouse_id", "carrier", "service_level", "tracking_number", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _iso_timestamp(cls, value: Any) -> Any:
        # ISO-8601 text only: an epoch number (or its digits as a string) says nothing about the time zone the
        # sender meant, and pydantic would read it as UTC.
        if type(value) is not str:
            raise PydanticCustomError(
                "timestamp_not_text",
                "must be an ISO-8601 string with a UTC offset, e.g. 2026-03-01T09:30:00-05:00 (epoch numbers are "
                "not accepted)",
            )
        # The shape pydantic's parser does not check itself: a date and a time, not digits (an epoch) or a date
        # alone. Cheap first: this runs for every record.
        text = value.strip()
        if text[4:5] != "-" or text[10:11] not in _DATE_TIME_SEPARATORS or not text[:4].isdigit():
            raise PydanticCustomError(
                "timestamp_not_iso", "is not an ISO-8601 timestamp (send e.g. 2026-03-01T09:30:00-05:00)"
            )
        return value

    @field_validator("postage", mode="before")
    @classmethod
    def _no_float_money(cls, value: Any) -> Any:
        # Money travels as a decimal string. A JSON number is accepted only through its exact text: floats
        # never enter the arithmetic. A boolean is not an amount.
        if isinstance(value, bool):
            raise PydanticCustomError("decimal_type", 'must be a decimal number (a string such as "7.35")')
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
    "timestamp_not_text": "invalid_timestamp",
    "timestamp_not_iso": "invalid_timestamp",
    "dict_type": "invalid_field",
    "promise_not_text": "invalid_timestamp",
    "promise_invalid": "invalid_timestamp",
    "promise_naive": "naive_timestamp",
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
    if field in QUANTITIES and kind in ("int_type", "int_parsing", "int_from_float", "less_than_equal"):
        return "invalid_quantity"
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
    if code == "invalid_quantity":
        return f"{field}: must be a whole number from 0 to 2147483647 (a JSON integer; got {_shown(value)})"
    return f"{field}: {err['msg']} (got {_shown(value)})"


def _shown(value: Any) -> str:
    shown = f"'{printable(value)}'" if isinstance(value, str) else repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return shown


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
    # isprintable() is False for any control character (and tabs, and a few spaces): the common record pays that
    # C-speed scan only
    control = None if text.isprintable() else _CONTROL.search(text)
    if _NUL_ESCAPE in text or (control is not None and "\x00" in text):
        raise Rejected([Fault("invalid_text", "record contains a NUL character, which PostgreSQL text cannot hold")])
    raw_controls = control_characters(text, _C0) if control is not None else []
    if raw_controls:
        # unescaped control characters are not JSON; say which, rather than "malformed"
        raise Rejected(
            [Fault("control_character", f"record contains unescaped control characters ({', '.join(raw_controls)})")]
        )
    if control is not None or "\\u" in text:  # DEL/C1 as they are, or an escape: look at the text fields
        try:
            faults = text_field_faults(json.loads(text))
        except (ValueError, RecursionError):
            faults = []  # not JSON: said below
        if faults:
            raise Rejected(faults)
    return _validated(CanonicalEvent.model_validate_json, text, reference), text


def parse_record(record: dict[str, Any], reference: Reference) -> CanonicalEvent:
    """Validate one record given as a mapping (a CSV row, a replayed record). Raises ``Rejected``."""
    if any(isinstance(v, str) and "\x00" in v for v in record.values()):
        raise Rejected([Fault("invalid_text", "record contains a NUL character, which PostgreSQL text cannot hold")])
    faults = text_field_faults(record)
    if faults:
        raise Rejected(faults)
    return _validated(CanonicalEvent.model_validate, record, reference)


def _validated(validate: Callable[[Any], CanonicalEvent], value: Any, reference: Reference) -> CanonicalEvent:
    """The event ``validate`` makes of ``value`` (JSON text or a mapping), its references checked. Raises
    ``Rejected`` with every fault."""
    try:
        event = validate(value)
    except ValidationError as exc:
        raise Rejected(faults_from_validation(exc)) from None
    faults = check_references(event, reference)
    if faults:
        raise Rejected(faults)
    return event


def csv_record(row: dict[str, str | None]) -> dict[str, Any]:
    """A CSV row as the record it stands for: empty cells are absent, ``attributes`` is JSON text."""
    record: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
    for name in QUANTITIES:
        # A CSV cell is text: a whole number written as one is that integer; anything else ("3.0", "true")
        # stays text and is refused as invalid_quantity.
        value = record.get(name)
        if isinstance(value, str) and _INTEGER.match(value.strip()) and len(value.strip()) <= 18:
            record[name] = int(value.strip())
    attributes = record.get("attributes")
    if isinstance(attributes, str):
        if _NUL_ESCAPE in attributes:
            raise Rejected([Fault("invalid_text", "attributes: contains a NUL character (\\u0000)")])
        try:
            record["attributes"] = json.loads(attributes)
        except json.JSONDecodeError as exc:
            raise Rejected([Fault("invalid_field", f"attributes: not valid JSON ({exc.msg})")]) from None
        except (ValueError, RecursionError) as exc:
            raise Rejected([Fault("invalid_field", f"attributes: not usable JSON ({exc})")]) from None
    return record


def to_row(event: CanonicalEvent, payload: str, file_name: str, line_number: int) -> tuple:
    """The raw.order_events row (in ``COLUMNS`` order) for a validated event."""
    values = list(_FIELD_VALUES(event))
    if values[_SERVICE_LEVEL]:
        values[_SERVICE_LEVEL] = values[_SERVICE_LEVEL].lower()
    if values[_ATTRIBUTES] is not None:
        values[_ATTRIBUTES] = json.dumps(values[_ATTRIBUTES])
    return (*values, payload, file_name, line_number)
