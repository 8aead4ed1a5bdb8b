"""Validation of canonical events: every fault class gets its own error code (DESIGN §4.4)."""

from __future__ import annotations

import json
from datetime import UTC

import pytest

from e2a_dagster.lib.ingestion.events import Rejected, csv_record, parse_json_line, parse_record

GOOD = {
    "event_id": "e-1",
    "tenant_id": "acme",
    "source": "wms",
    "event_type": "pick_completed",
    "order_id": "A-1",
    "occurred_at": "2026-03-02T10:15:00-05:00",
    "warehouse_id": "NJ1",
    "units": 3,
}


def _reject_code(record: dict | str, reference) -> str:
    line = record if isinstance(record, str) else json.dumps(record)
    with pytest.raises(Rejected) as info:
        parse_json_line(line, reference)
    return info.value.code


def test_good_record_parses_with_offset_kept(reference):
    event, payload = parse_json_line(json.dumps(GOOD), reference)
    assert event.order_id == "A-1"
    assert event.units == 3
    assert event.occurred_at.utcoffset().total_seconds() == -5 * 3600
    assert json.loads(payload) == GOOD


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"tenant_id": "nosuch"}, "unknown_tenant"),
        ({"tenant_id": "Bad Tenant!"}, "invalid_tenant_id"),
        ({"event_type": "teleported"}, "unknown_event_type"),
        ({"occurred_at": "2026-03-02T10:15:00"}, "naive_timestamp"),
        ({"occurred_at": "yesterday"}, "invalid_timestamp"),
        ({"units": -1}, "negative_quantity"),
        ({"cartons": -2}, "negative_quantity"),
        ({"postage": "abc"}, "non_numeric_amount"),
        ({"postage": "-3.20"}, "negative_amount"),
        ({"event_id": "x" * 129}, "field_too_long"),
        ({"warehouse_id": "ZZ9"}, "unknown_warehouse"),
        ({"warehouse_id": None}, "missing_warehouse"),
        ({"service_level": "teleport"}, "unknown_service_level"),
        ({"units": 1.5}, "invalid_quantity"),
        # DESIGN §4.1, strictly: an integer is a JSON integer, a timestamp ISO-8601 text with an offset
        ({"units": True}, "invalid_quantity"),
        ({"lines": "3"}, "invalid_quantity"),
        ({"cartons": False}, "invalid_quantity"),
        ({"occurred_at": 1772464500}, "invalid_timestamp"),
        ({"occurred_at": "1772464500"}, "invalid_timestamp"),
        ({"occurred_at": 1772464500.5}, "invalid_timestamp"),
        ({"occurred_at": "2026-03-02"}, "invalid_timestamp"),
        ({"occurred_at": True}, "invalid_timestamp"),
        ({"postage": True}, "non_numeric_amount"),
        ({"order_id": "A-1\u001b[31m"}, "control_character"),
        ({"event_id": "e-\u00851"}, "control_character"),
        ({"tracking_number": "1Z\u007f9"}, "control_character"),
    ],
)
def test_each_fault_has_its_own_code(reference, change, code):
    assert _reject_code({**GOOD, **change}, reference) == code


@pytest.mark.parametrize("field", ["event_id", "tenant_id", "source", "event_type", "order_id", "occurred_at"])
def test_missing_required_field(reference, field):
    record = {k: v for k, v in GOOD.items() if k != field}
    assert _reject_code(record, reference) == "missing_field"


def test_malformed_json_and_non_objects(reference):
    assert _reject_code('{"event_id": "e-1", ', reference) == "malformed_json"
    assert _reject_code("[1, 2, 3]", reference) == "malformed_json"


def test_nul_characters_are_refused_before_postgres_sees_them(reference):
    assert _reject_code({**GOOD, "order_id": "A\u0000"}, reference) == "invalid_text"
    assert _reject_code({**GOOD, "attributes": {"note": "a\u0000b"}}, reference) == "invalid_text"


def test_offsets_in_every_iso_spelling_are_accepted(reference):
    for stamp in ("2026-03-02T15:15:00Z", "2026-03-02T10:15:00-05:00", "2026-03-02 10:15:00.250-0500"):
        event, _ = parse_json_line(json.dumps({**GOOD, "occurred_at": stamp}), reference)
        assert event.occurred_at.astimezone(UTC).hour == 15, stamp


def test_csv_cells_are_integers_only_when_written_as_one(reference):
    row = {k: str(v) for k, v in GOOD.items()}
    assert parse_record(csv_record(row | {"units": " 3 "}), reference).units == 3
    for cell, code in (("3.0", "invalid_quantity"), ("true", "invalid_quantity"), ("-3", "negative_quantity")):
        with pytest.raises(Rejected) as info:
            parse_record(csv_record(row | {"units": cell}), reference)
        assert info.value.code == code, cell


def test_messages_show_control_characters_escaped(reference):
    with pytest.raises(Rejected) as info:
        parse_json_line(json.dumps({**GOOD, "order_id": "A\u001bB"}), reference)
    assert info.value.message == "order_id: contains control characters (\\x1b) (got 'A\\x1bB')"


def test_message_names_the_field_and_value(reference):
    with pytest.raises(Rejected) as info:
        parse_json_line(json.dumps({**GOOD, "occurred_at": "2026-03-02T10:15:00"}), reference)
    assert "occurred_at" in info.value.message
    assert "2026-03-02T10:15:00" in info.value.message


def test_several_faults_are_all_reported(reference):
    with pytest.raises(Rejected) as info:
        parse_json_line(json.dumps({**GOOD, "units": -1, "event_type": "nope"}), reference)
    codes = {f.code for f in info.value.faults}
    assert codes == {"negative_quantity", "unknown_event_type"}


def test_order_events_need_no_warehouse(reference):
    event, _ = parse_json_line(
        json.dumps({**GOOD, "source": "oms", "event_type": "order_created", "warehouse_id": None}), reference
    )
    assert event.warehouse_id is None


def test_csv_record_empty_cells_and_attributes(reference):
    row = {**{k: str(v) for k, v in GOOD.items()}, "carrier": "", "attributes": '{"gift": true}'}
    event = parse_record(csv_record(row), reference)
    assert event.carrier is None
    assert event.units == 3
    assert event.attributes == {"gift": True}
    with pytest.raises(Rejected) as info:
        csv_record({**row, "attributes": "{not json"})
    assert info.value.code == "invalid_field"


def test_postage_keeps_exact_decimal(reference):
    event, _ = parse_json_line(json.dumps({**GOOD, "event_type": "label_printed", "postage": "7.35"}), reference)
    assert str(event.postage) == "7.35"
    event, _ = parse_json_line(json.dumps({**GOOD, "event_type": "label_printed", "postage": 7.35}), reference)
    assert str(event.postage) == "7.35"


ORDER = {**GOOD, "source": "oms", "event_type": "order_paid", "warehouse_id": None, "units": None}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-03-06", "2026-03-06"),  # a date: 24:00 at the end of it at the warehouse, resolved in dbt
        (" 2026-03-06 ", "2026-03-06"),
        ("2026-03-06T17:00:00-05:00", "2026-03-06T22:00:00+00:00"),  # an instant, kept in UTC
        ("2026-03-06T22:00:00Z", "2026-03-06T22:00:00+00:00"),
        ("2026-03-06 17:00+09:00", "2026-03-06T08:00:00+00:00"),
        ("", None),
    ],
)
def test_promises_are_an_instant_with_offset_or_a_date(reference, given, stored):
    for field in ("promised_ship_by", "promised_deliver_by"):
        event, _ = parse_json_line(json.dumps({**ORDER, field: given}), reference)
        assert getattr(event, field) == stored
        row = {k: "" if v is None else str(v) for k, v in {**ORDER, field: given}.items()}
        assert getattr(parse_record(csv_record(row), reference), field) == stored  # a CSV column alike


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("next tuesday", "invalid_timestamp"),
        ("2026-02-30", "invalid_timestamp"),
        ("2026-03-06T17:00:00", "naive_timestamp"),
        (1772834400, "invalid_timestamp"),  # an epoch says nothing about the zone meant
        ("1999-12-31T23:00:00+00:00", "invalid_timestamp"),
    ],
)
def test_a_bad_promise_is_rejected_naming_the_field(reference, given, code):
    with pytest.raises(Rejected) as info:
        parse_json_line(json.dumps({**ORDER, "promised_deliver_by": given}), reference)
    assert info.value.code == code
    assert info.value.message.startswith("promised_deliver_by:")
