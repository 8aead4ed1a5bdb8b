"""Hostile landing files for the fuzz tests: every bad-input class of DESIGN §4.4 and issue 17, as bytes.

Each record is written with the outcome the contract gives it, decided here by hand from the rules (never by
the code under test): ``loaded``, ``duplicate`` (a re-sent identical event: a no-op) or the error code of the
DLQ row it must become. Line numbers are counted as the records are written, so every expectation is a
``file:line``. Random choices (seeded) only pick which class comes next and vary ids and values."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from e2a_dagster.lib.ingestion.events import FIELDS as EVENT_FIELDS
from e2a_dagster.lib.invoicing.billing import FIELDS as BILLING_FIELDS

BOM = b"\xef\xbb\xbf"
LOADED, DUPLICATE = "loaded", "duplicate"
# The month of the good records: one no other test uses (their day aggregates stay theirs), EDT / CEST.
MONTH = "2025-09"


@dataclass(frozen=True)
class Expected:
    file: str
    line: int
    outcome: str  # LOADED, DUPLICATE or an error code
    data: bytes  # the record's bytes as written, line end excluded (b"" for a file rejected whole)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Corpus:
    """Files written into ``events_dir`` / ``billing_dir``, and what must become of every record in them."""

    prefix: str
    events_dir: Path
    billing_dir: Path
    rng: random.Random
    expected: list[Expected] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    _n: int = 0

    def uid(self) -> str:
        self._n += 1
        return f"{self.prefix}-{self._n:05d}"

    # -- writing ----------------------------------------------------------------------------------------------

    def write(self, path: Path, header: bytes | None, records: list[tuple[bytes, str]], *, bom: bool, crlf: bool):
        end = b"\r\n" if crlf else b"\n"
        out = io.BytesIO()
        if bom:
            out.write(BOM)
        line = 0
        if header is not None:
            out.write(header + end)
            line += 1
        for data, outcome in records:
            line += 1
            self.expected.append(Expected(path.name, line, outcome, data))
            out.write(data + end)
            line += data.count(b"\n")  # a quoted CSV cell with line ends spans physical lines
            if self.rng.random() < 0.03:  # blank lines are not records
                out.write(end)
                line += 1
        path.write_bytes(out.getvalue())
        self.files.append(path)
        return path

    def whole_file(self, path: Path, content: bytes, code: str) -> Path:
        path.write_bytes(content)
        self.expected.append(Expected(path.name, 0, code, b""))
        self.files.append(path)
        return path

    @property
    def event_files(self) -> list[str]:
        return [p.name for p in self.files if p.parent == self.events_dir]

    @property
    def billing_files(self) -> list[str]:
        return [p.name for p in self.files if p.parent == self.billing_dir]


# ------------------------------------------------------------------------------------------------------------------
# Canonical events


def good_event(c: Corpus) -> dict:
    """A valid event of September 2025 (DESIGN §4.1, §8: acme ships from NJ1 in New York, globex from BER1 in
    Berlin)."""
    n = c.uid()
    day = c.rng.randint(2, 27)
    if c.rng.random() < 0.5:
        tenant, warehouse, offset = "acme", "NJ1", "-04:00"
    else:
        tenant, warehouse, offset = "globex", "BER1", "+02:00"
    kind = c.rng.choice(["order_paid", "pick_completed", "pack_completed", "label_printed"])
    event = {
        "event_id": f"{n}-{kind}",
        "tenant_id": tenant,
        "source": "oms" if kind == "order_paid" else "wms",
        "event_type": kind,
        "order_id": f"{n}",
        "occurred_at": f"{MONTH}-{day:02d}T{c.rng.randint(8, 15):02d}:{c.rng.randint(0, 59):02d}:00{offset}",
    }
    if kind != "order_paid":
        event["warehouse_id"] = warehouse
    if kind == "pick_completed":
        event |= {"units": c.rng.randint(0, 9), "lines": c.rng.randint(1, 3)}
    if kind == "pack_completed":
        event["cartons"] = c.rng.randint(1, 2)
    if kind == "label_printed":
        event |= {
            "carrier": "ups",
            "service_level": "express",
            "postage": f"{c.rng.randint(4, 9)}.{c.rng.randint(0, 99):02d}",
        }
    if c.rng.random() < 0.2:
        event["attributes"] = {"channel": "web", "note": "fragile ✓ — äöü", "gift": c.rng.random() < 0.5}
    return event


def _j(record) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _spliced(record: dict, field_name: str, inserted: bytes) -> bytes:
    """The record as JSON with raw bytes inserted in the middle of one string value."""
    data = _j(record)
    needle = json.dumps(record[field_name], ensure_ascii=False).encode()
    at = data.index(b": " + needle) + 3  # after the opening quote
    return data[:at] + inserted + data[at:]


def _wms_event(c: Corpus) -> dict:
    while True:
        event = good_event(c)
        if event["source"] == "wms":
            return event


# class name -> function of the corpus giving (record bytes, outcome)
JSONL_CLASSES: dict[str, Callable[[Corpus], tuple[bytes, str]]] = {
    "good": lambda c: (_j(good_event(c)), LOADED),
    "nul byte": lambda c: (_spliced(good_event(c), "order_id", b"\x00"), "invalid_text"),
    "nul escape": lambda c: (_j(good_event(c) | {"order_id": "A\u0000B"}), "invalid_text"),
    "invalid utf-8": lambda c: (_spliced(good_event(c), "order_id", b"\xff\xfe"), "invalid_encoding"),
    "overlong utf-8": lambda c: (_spliced(good_event(c), "event_id", b"\xc0\xaf"), "invalid_encoding"),
    "truncated utf-8": lambda c: (_spliced(good_event(c), "order_id", b"\xe2\x82"), "invalid_encoding"),
    "raw control character": lambda c: (_spliced(good_event(c), "order_id", b"\x1b[31m"), "control_character"),
    "escaped control character": lambda c: (_j(good_event(c) | {"order_id": "A\u0007B"}), "control_character"),
    "C1 control character": lambda c: (_j(good_event(c) | {"event_id": "e\u0085" + c.uid()}), "control_character"),
    "lone surrogate escape": lambda c: (
        _j(good_event(c)).replace(b'"source": "', b'"source": "\\ud800'),
        "invalid_text",  # valid JSON grammar, but no text PostgreSQL (or UTF-8) can hold
    ),
    "lone surrogate in attributes": lambda c: (
        _j(good_event(c) | {"attributes": {"note": "x"}}).replace(b'"note": "x"', b'"note": "\\udc00x"'),
        "malformed_json",  # the JSON parser refuses it before the fields are looked at
    ),
    "truncated json": lambda c: (_j(good_event(c))[:-7], "malformed_json"),
    "json array": lambda c: (b"[1, 2, 3]", "malformed_json"),
    "json number": lambda c: (b"42", "malformed_json"),
    "json null": lambda c: (b"null", "malformed_json"),
    "deep nesting": lambda c: (
        _j(good_event(c) | {"attributes": None})[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "malformed_json",
    ),
    "missing order_id": lambda c: (_j({k: v for k, v in good_event(c).items() if k != "order_id"}), "missing_field"),
    "empty event_id": lambda c: (_j(good_event(c) | {"event_id": ""}), "missing_field"),
    "unknown tenant": lambda c: (_j(good_event(c) | {"tenant_id": "initech"}), "unknown_tenant"),
    "invalid tenant id": lambda c: (_j(good_event(c) | {"tenant_id": "Acme Corp!"}), "invalid_tenant_id"),
    "unknown event type": lambda c: (_j(good_event(c) | {"event_type": "teleported"}), "unknown_event_type"),
    "naive timestamp": lambda c: (_j(good_event(c) | {"occurred_at": f"{MONTH}-04T10:00:00"}), "naive_timestamp"),
    "words for a timestamp": lambda c: (_j(good_event(c) | {"occurred_at": "yesterday"}), "invalid_timestamp"),
    "epoch seconds": lambda c: (_j(good_event(c) | {"occurred_at": 1772618400}), "invalid_timestamp"),
    "epoch milliseconds": lambda c: (_j(good_event(c) | {"occurred_at": 1772618400123}), "invalid_timestamp"),
    "epoch as a string": lambda c: (_j(good_event(c) | {"occurred_at": "1772618400"}), "invalid_timestamp"),
    "negative quantity": lambda c: (_j(_wms_event(c) | {"units": -3}), "negative_quantity"),
    "boolean quantity": lambda c: (_j(_wms_event(c) | {"units": True}), "invalid_quantity"),
    "numeric string quantity": lambda c: (_j(_wms_event(c) | {"cartons": "2"}), "invalid_quantity"),
    "float quantity": lambda c: (_j(_wms_event(c) | {"lines": 1.5}), "invalid_quantity"),
    "huge quantity": lambda c: (_j(_wms_event(c) | {"units": 10**30}), "invalid_quantity"),
    "words for an amount": lambda c: (_j(_wms_event(c) | {"postage": "seven"}), "non_numeric_amount"),
    "boolean amount": lambda c: (_j(_wms_event(c) | {"postage": True}), "non_numeric_amount"),
    "negative amount": lambda c: (_j(_wms_event(c) | {"postage": "-1.50"}), "negative_amount"),
    "field too long": lambda c: (_j(good_event(c) | {"event_id": "x" * 300}), "field_too_long"),
    "unknown warehouse": lambda c: (_j(_wms_event(c) | {"warehouse_id": "ZZ9"}), "unknown_warehouse"),
    "missing warehouse": lambda c: (_j(_wms_event(c) | {"warehouse_id": None}), "missing_warehouse"),
    "unknown service level": lambda c: (_j(good_event(c) | {"service_level": "teleport"}), "unknown_service_level"),
    "attributes not an object": lambda c: (_j(good_event(c) | {"attributes": [1, 2]}), "invalid_field"),
}


def _picks(c: Corpus, classes: dict, count: int) -> list[str]:
    """Every class once, then good records half of the time and a random bad class otherwise, shuffled."""
    names = list(classes)
    picks = names + ["good" if c.rng.random() < 0.5 else c.rng.choice(names[1:]) for _ in range(count - len(names))]
    c.rng.shuffle(picks)
    return picks


def jsonl_records(c: Corpus, count: int) -> list[tuple[bytes, str]]:
    """``count`` records, every class at least once; plus re-sent and conflicting copies of good events (a
    re-sent identical event is a no-op, the same id with other content a conflict)."""
    picks = _picks(c, JSONL_CLASSES, count)
    records: list[tuple[bytes, str]] = []
    good: list[bytes] = []
    for name in picks:
        data, outcome = JSONL_CLASSES[name](c)
        if name == "good" and good and c.rng.random() < 0.08:
            original = c.rng.choice(good)
            event = json.loads(original)
            if c.rng.random() < 0.5:
                data, outcome = original, DUPLICATE
            else:
                data, outcome = _j(event | {"order_id": event["order_id"] + "-changed"}), "conflicting_duplicate"
        elif outcome == LOADED:
            good.append(data)
        records.append((data, outcome))
    return records


# ------------------------------------------------------------------------------------------------------------------
# CSV


def csv_line(cells: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue().encode("utf-8")


def _event_cells(event: dict) -> list[str]:
    return [
        json.dumps(event[f], ensure_ascii=False) if f == "attributes" and f in event else str(event.get(f, "") or "")
        for f in EVENT_FIELDS
    ]


def _event_row(c: Corpus, **changes) -> list[str]:
    return _event_cells(good_event(c) | changes)


EVENT_CSV_CLASSES: dict[str, Callable[[Corpus], tuple[bytes, str]]] = {
    "good": lambda c: (csv_line(_event_row(c)), LOADED),
    "multi-line quoted cell": lambda c: (
        csv_line(_event_cells(good_event(c) | {"attributes": {"note": "first line\nsecond line"}})),
        LOADED,
    ),
    "nul byte": lambda c: (
        csv_line(_event_row(c)).replace(b",oms,", b",o\x00ms,").replace(b",wms,", b",w\x00ms,"),
        "invalid_text",
    ),
    "invalid utf-8": lambda c: (csv_line(_event_row(c)) + b"\xff", "invalid_encoding"),
    "control character": lambda c: (csv_line(_event_row(c, tracking_number="1Z\x1b999")), "control_character"),
    "too few cells": lambda c: (b"only,three,cells", "malformed_csv"),
    "too many cells": lambda c: (csv_line(_event_row(c)) + b",extra", "malformed_csv"),
    "boolean quantity": lambda c: (csv_line(_event_cells(_wms_event(c) | {"units": "true"})), "invalid_quantity"),
    "decimal quantity": lambda c: (csv_line(_event_cells(_wms_event(c) | {"units": "3.0"})), "invalid_quantity"),
    "epoch timestamp": lambda c: (csv_line(_event_row(c, occurred_at="1772618400")), "invalid_timestamp"),
    "naive timestamp": lambda c: (csv_line(_event_row(c, occurred_at=f"{MONTH}-04 10:00:00")), "naive_timestamp"),
    "attributes not json": lambda c: (csv_line([*_event_row(c)[:-1], "{oops"]), "invalid_field"),
    "missing order_id": lambda c: (csv_line(_event_row(c, order_id="")), "missing_field"),
    "unknown tenant": lambda c: (csv_line(_event_row(c, tenant_id="initech")), "unknown_tenant"),
}


def event_csv_records(c: Corpus, count: int) -> list[tuple[bytes, str]]:
    records = [EVENT_CSV_CLASSES[name](c) for name in _picks(c, EVENT_CSV_CLASSES, count)]
    # One quote that is never closed: that line alone is rejected, every line after it still reads.
    records.insert(len(records) // 2, (csv_line(_event_row(c))[:-3] + b',"never closed', "malformed_csv"))
    return records


def invoice_line(c: Corpus, **changes) -> dict:
    """A valid invoice line (acme bills USD, globex EUR: DESIGN §8): ORDER_FEE 1 × 2.50 = 2.50."""
    n = c.uid()
    tenant, currency = ("acme", "USD") if c.rng.random() < 0.5 else ("globex", "EUR")
    line = {
        "invoice_id": f"INV-{c.prefix}-{tenant}",
        "tenant_id": tenant,
        "invoice_date": "2025-10-01",
        "period_start": "2025-09-01",
        "period_end": "2025-09-30",
        "line_id": n,
        "charge_code": "ORDER_FEE",
        "order_id": f"O-{n}",
        "quantity": "1",
        "unit_rate": "2.50",
        "amount": "2.50",
        "currency": currency,
    }
    return line | changes


def _billing_row(c: Corpus, **changes) -> bytes:
    line = invoice_line(c, **changes)
    return csv_line([line[f] for f in BILLING_FIELDS])


BILLING_CLASSES: dict[str, Callable[[Corpus], tuple[bytes, str]]] = {
    "good": lambda c: (_billing_row(c), LOADED),
    "nul byte": lambda c: (_billing_row(c).replace(b"ORDER_FEE", b"ORDER\x00FEE"), "invalid_text"),
    "invalid utf-8": lambda c: (_billing_row(c).replace(b"ORDER_FEE", b"ORDER\xe9FEE"), "invalid_encoding"),
    "control character": lambda c: (_billing_row(c, order_id="O\x1b1"), "control_character"),
    "too few cells": lambda c: (b"INV-1,acme", "malformed_csv"),
    "words for an amount": lambda c: (
        _billing_row(c, amount="two fifty", quantity="", unit_rate=""),
        "non_numeric_amount",
    ),
    "amount mismatch": lambda c: (_billing_row(c, amount="3.50"), "amount_mismatch"),
    "negative quantity": lambda c: (_billing_row(c, quantity="-1", amount="-2.50"), "negative_quantity"),
    "unknown charge": lambda c: (_billing_row(c, charge_code="TELEPORT_FEE"), "unknown_charge_code"),
    "unknown tenant": lambda c: (_billing_row(c, tenant_id="initech"), "unknown_tenant"),
    "naive timestamp date": lambda c: (_billing_row(c, invoice_date="2025-10-01T09:00:00"), "naive_timestamp"),
    "epoch date": lambda c: (_billing_row(c, period_start="1772323200"), "invalid_date"),
    "impossible date": lambda c: (_billing_row(c, period_end="2025-09-31"), "invalid_date"),
    "missing amount": lambda c: (_billing_row(c, amount=""), "missing_field"),
}


def billing_records(c: Corpus, count: int) -> list[tuple[bytes, str]]:
    return [BILLING_CLASSES[name](c) for name in _picks(c, BILLING_CLASSES, count)]


# ------------------------------------------------------------------------------------------------------------------
# A whole landing zone


def hostile_landing(
    prefix: str, events_dir: Path, billing_dir: Path, *, seed: int = 17, scale: float = 1, huge_line_mb: int = 100
) -> Corpus:
    """Events JSONL (one with a BOM and CRLF, one with a ``huge_line_mb`` MB line), events CSV (Excel's BOM +
    CRLF; one misspelled header), billing CSV (BOM + CRLF; one misspelled header), and binary files in both
    folders. ``scale`` multiplies the record counts (scale 1: 2,205 records)."""
    events_dir.mkdir(parents=True, exist_ok=True)
    billing_dir.mkdir(parents=True, exist_ok=True)
    c = Corpus(prefix, events_dir, billing_dir, random.Random(seed))
    c.write(events_dir / f"{prefix}-excel.jsonl", None, jsonl_records(c, int(600 * scale)), bom=True, crlf=True)
    plain = jsonl_records(c, int(600 * scale))
    if huge_line_mb:
        huge = _j(good_event(c) | {"attributes": {"blob": "x" * (huge_line_mb << 20)}})
        plain.insert(len(plain) // 3, (huge, "record_too_long"))
    c.write(events_dir / f"{prefix}-plain.jsonl", None, plain, bom=False, crlf=False)
    header = csv_line(list(EVENT_FIELDS))
    c.write(events_dir / f"{prefix}-excel.csv", header, event_csv_records(c, int(400 * scale)), bom=True, crlf=True)
    misspelled = [(csv_line(_event_row(c)), "invalid_header") for _ in range(int(100 * scale))]
    c.write(
        events_dir / f"{prefix}-misspelled.csv",
        header.replace(b"occurred_at", b"ocurred_at"),
        misspelled,
        bom=False,
        crlf=False,
    )
    bheader = csv_line(list(BILLING_FIELDS))
    c.write(billing_dir / f"{prefix}-invoice.csv", bheader, billing_records(c, int(450 * scale)), bom=True, crlf=True)
    bad_header = [(_billing_row(c), "invalid_header") for _ in range(int(50 * scale))]
    c.write(
        billing_dir / f"{prefix}-invoice-misspelled.csv",
        bheader.replace(b"unit_rate", b"unitrate"),
        bad_header,
        bom=False,
        crlf=True,
    )
    c.whole_file(events_dir / f"{prefix}-archive.jsonl", gzip.compress(b'{"event_id": "x"}\n' * 100), "binary_file")
    c.whole_file(billing_dir / f"{prefix}-scan.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary_file")
    c.whole_file(events_dir / f"{prefix}-noise.jsonl", random.Random(seed).randbytes(20_000), "binary_file")
    return c
