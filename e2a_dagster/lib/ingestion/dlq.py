"""The dead-letter queue ``ops.rejected_records`` (DESIGN §4.4): replay and discard.

Replay re-validates a record with today's rules and reference data (a seed fix adding a tenant, say) and loads
what passes through the same idempotent insert as first ingestion, by source (landing events, Shopify pages,
invoice lines); the record becomes ``replayed``. A record that
still fails gets ``attempts + 1`` and its new error; after ``max_attempts`` it is ``failed`` and replay leaves it
alone unless asked for it by id. Database trouble is transient: retried with backoff, never counted as an
attempt."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
import sqlalchemy as sa

from e2a_dagster.lib.core.database import raw_connection
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.ingestion.events import FIELDS, Fault, Rejected, csv_record, parse_json_line, parse_record, to_row
from e2a_dagster.lib.ingestion.ingest import _TEMP_DDL, REQUIRED_CSV_COLUMNS, _load_batch, csv_header_fault, ingest_file
from e2a_dagster.lib.ingestion.raw_records import csv_records, sniff_file
from e2a_dagster.lib.ingestion.shopify import (
    SOURCE as SHOPIFY,
)
from e2a_dagster.lib.ingestion.shopify import (
    insert_orders,
    order_row,
    parse_page_body,
    validate_order,
    with_db_retries,
)
from e2a_dagster.lib.invoicing.billing import SOURCE as BILLING
from e2a_dagster.lib.invoicing.billing import ingest_billing_file, replay_line

MAX_ATTEMPTS = 5
FILE_CODES = ("binary_file", "unreadable_file")  # a file rejected whole (location ``file:0``)


@dataclass
class ReplayResult:
    replayed: list[int] = field(default_factory=list)
    still_failing: list[int] = field(default_factory=list)
    marked_failed: list[int] = field(default_factory=list)
    loaded_rows: int = 0

    def as_rows(self) -> list[dict]:
        return [
            {"outcome": "replayed", "records": len(self.replayed)},
            {"outcome": "still failing (attempts + 1)", "records": len(self.still_failing)},
            {"outcome": "marked failed (max attempts reached)", "records": len(self.marked_failed)},
        ]


def _split_location(location: str) -> tuple[str, int]:
    name, _, line = location.rpartition(":")
    return name, int(line) if line.isdigit() else 0


def _record_text(raw: str, raw_bytes: bytes | None) -> str:
    """The record as text for re-validation: its exact bytes when they were kept (they may still be bad)."""
    if raw_bytes is None:
        return raw
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(
            [
                Fault(
                    "invalid_encoding",
                    f"the record is not valid UTF-8: byte 0x{raw_bytes[exc.start]:02x} at offset "
                    f"{exc.start} ({exc.reason})",
                )
            ]
        ) from None
    if "\x00" in text:
        raise Rejected([Fault("invalid_text", "the record contains a NUL byte, which PostgreSQL text cannot hold")])
    return text


def _event_columns(name: str, events_dir: Path | None, stored: str | None) -> list[str]:
    """The header a CSV row is read with: the file's (when it is still there and right), else the one stored with
    the record."""
    candidates = []
    header_file = events_dir / name if events_dir else None
    if header_file is not None and header_file.is_file():
        with header_file.open("rb") as fh:
            first = next(csv_records(fh), None)
        if first is not None and first.cells is not None:
            candidates.append([h.strip() for h in first.cells])
    if stored is not None:
        candidates.append([h.strip() for h in _cells(stored)])
    if not candidates:
        raise Rejected(
            [Fault("replay_unavailable", f"the CSV header of {name} is needed to read this row, and the file is gone")]
        )
    for columns in candidates:
        if csv_header_fault(columns, FIELDS, REQUIRED_CSV_COLUMNS) is None:
            return columns
    problem = csv_header_fault(candidates[0], FIELDS, REQUIRED_CSV_COLUMNS)
    raise Rejected([Fault("invalid_header", f"{problem}; fix the file's header, then replay")])


def _cells(text: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text), strict=True), [])
    except csv.Error as exc:
        raise Rejected([Fault("malformed_csv", f"not CSV: {exc}")]) from None


def _landing_rows(
    raw: str,
    location: str,
    reference: Reference,
    events_dir: Path | None,
    raw_bytes: bytes | None = None,
    header: str | None = None,
) -> list[tuple]:
    name, line = _split_location(location)
    text = _record_text(raw, raw_bytes)
    if name.lower().endswith(".csv"):
        columns = _event_columns(name, events_dir, header)
        row = _cells(text)
        if len(row) != len(columns):
            raise Rejected([Fault("malformed_csv", f"expected {len(columns)} columns, found {len(row)}")])
        record = csv_record(dict(zip(columns, row, strict=True)))
        event = parse_record(record, reference)
        return [to_row(event, json.dumps(record, default=str), name, line)]
    event, payload = parse_json_line(text, reference)
    return [to_row(event, payload, name, line)]


def _replay_file(engine: sa.Engine, source: str, location: str, reference: Reference, folder: Path | None) -> int:
    """A file rejected whole (``file:0``: binary, unreadable): load it if it can be read now."""
    name, _ = _split_location(location)
    path = folder / name if folder else None
    if path is None or not path.is_file():
        raise Rejected([Fault("replay_unavailable", f"{name} is no longer in the landing zone")])
    # Said here, not by loading: loading a file that is still bad would update this very (locked) DLQ row.
    fault = sniff_file(path)
    if fault is not None:
        raise Rejected([Fault(fault.code, f"{name} still cannot be read as records: {fault.message}")])
    result = ingest_billing_file(engine, path, reference) if source == BILLING else ingest_file(engine, path, reference)
    if result.file_rejected:
        raise Rejected([Fault(result.file_rejected, f"{name} still cannot be read as records")])
    if result.skipped:
        raise Rejected([Fault("replay_unavailable", f"{name} has the content that was rejected; send a fixed file")])
    return result.loaded


def _shop_tenant(conn: psycopg.Connection, shop: str) -> str:
    row = conn.execute(
        "select tenant_id from ops.source_cursors where source = %s and source_key = %s", (SHOPIFY, shop)
    ).fetchone()
    if row is None or not row[0]:
        raise Rejected([Fault("unknown_shop", f"no tenant is known for shop {shop} (pull it once first)")])
    return row[0]


def _shopify_rows(conn: psycopg.Connection, raw: str, location: str) -> list:
    shop = location.split("/admin/api/")[0]
    tenant = _shop_tenant(conn, shop)
    page = location.split("#")[0]
    if "#orders[" in location:
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise Rejected([Fault("malformed_order", f"not JSON: {exc}")]) from None
        orders = [document]
    else:
        orders, error = parse_page_body(raw)
        if orders is None:
            raise Rejected([Fault("malformed_page", error or "malformed page")])
    return [order_row(o, validate_order(o), shop=shop, tenant_id=tenant, page=page) for o in orders]


def replay(
    engine: sa.Engine,
    reference: Reference,
    *,
    ids: list[int] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    events_dir: Path | None = None,
    billing_dir: Path | None = None,
    db_retry_base: float = 0.5,
) -> ReplayResult:
    """Replay open records (or exactly ``ids``, which may include ``failed`` ones)."""
    with engine.connect() as conn:
        if ids:
            todo = [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "select rejected_id from ops.rejected_records where rejected_id = any(:ids) "
                        "and status in ('open', 'failed') order by rejected_id"
                    ),
                    {"ids": list(ids)},
                )
            ]
        else:
            todo = [
                r[0]
                for r in conn.execute(
                    sa.text("select rejected_id from ops.rejected_records where status = 'open' order by rejected_id")
                )
            ]
    result = ReplayResult()
    for rejected_id in todo:
        outcome = with_db_retries(
            lambda rid=rejected_id: _replay_one(engine, rid, reference, max_attempts, events_dir, billing_dir),
            base=db_retry_base,
        )
        kind, loaded = outcome
        result.loaded_rows += loaded
        {"replayed": result.replayed, "failing": result.still_failing, "failed": result.marked_failed}[kind].append(
            rejected_id
        )
    return result


def _replay_one(
    engine: sa.Engine,
    rejected_id: int,
    reference: Reference,
    max_attempts: int,
    events_dir: Path | None,
    billing_dir: Path | None = None,
) -> tuple[str, int]:
    with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
        row = cur.execute(
            "select source, location, raw, attempts, raw_bytes, csv_header, error_code from ops.rejected_records "
            "where rejected_id = %s for update",
            (rejected_id,),
        ).fetchone()
        source, location, raw, attempts, raw_bytes, header, code = row
        raw_bytes = bytes(raw_bytes) if raw_bytes is not None else None
        try:
            if code in FILE_CODES and location.endswith(":0"):
                folder = billing_dir if source == BILLING else events_dir
                loaded = _replay_file(engine, source, location, reference, folder)
            elif source == SHOPIFY:
                loaded = insert_orders(cur, _shopify_rows(conn, _record_text(raw, raw_bytes), location))
            elif source == BILLING:
                loaded = replay_line(cur, _record_text(raw, raw_bytes), location, reference, billing_dir, header)
            else:
                rows = _landing_rows(raw, location, reference, events_dir, raw_bytes, header)
                cur.execute(_TEMP_DDL)
                cur.execute("truncate _incoming_events")
                loaded, refused = _load_batch(cur, rows, _split_location(location)[0])
                if refused:
                    raise refused[0].fault
        except Rejected as exc:
            status = "failed" if attempts + 1 >= max_attempts else "open"
            cur.execute(
                """
                update ops.rejected_records
                   set attempts = attempts + 1, last_attempt_at = now(), error_code = %s, error_message = %s,
                       status = %s
                 where rejected_id = %s
                """,
                (exc.code, exc.message, status, rejected_id),
            )
            return ("failed" if status == "failed" else "failing"), 0
        cur.execute(
            "update ops.rejected_records set status = 'replayed', resolved_at = now(), last_attempt_at = now(), "
            "attempts = attempts + 1 where rejected_id = %s",
            (rejected_id,),
        )
        return "replayed", loaded


def discard(engine: sa.Engine, ids: list[int]) -> int:
    """Mark records discarded (kept, never replayed). Returns how many changed."""
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                "update ops.rejected_records set status = 'discarded', resolved_at = now() "
                "where rejected_id = any(:ids) and status in ('open', 'failed')"
            ),
            {"ids": list(ids)},
        ).rowcount


# ----------------------------------------------------------------------------------------------------------------
# Reading the queue (``e2a dlq list`` / ``e2a dlq show``)

LIST_MESSAGE_WIDTH = 110


@dataclass(frozen=True)
class RejectedRecord:
    rejected_id: int
    source: str
    location: str
    raw: str
    raw_bytes: bytes | None
    csv_header: str | None
    record_hash: str
    error_code: str
    error_message: str
    status: str
    attempts: int
    first_seen_at: datetime
    last_attempt_at: datetime
    resolved_at: datetime | None

    @property
    def exact_bytes(self) -> bytes:
        return self.raw_bytes if self.raw_bytes is not None else self.raw.encode("utf-8")


def load_records(engine: sa.Engine, ids: list[int]) -> list[RejectedRecord]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                select rejected_id, source, location, raw, raw_bytes, csv_header, record_hash, error_code,
                       error_message, status, attempts, first_seen_at, last_attempt_at, resolved_at
                from ops.rejected_records where rejected_id = any(:ids) order by rejected_id
                """
            ),
            {"ids": list(ids)},
        ).mappings()
        return [
            RejectedRecord(**{**r, "raw_bytes": bytes(r["raw_bytes"]) if r["raw_bytes"] is not None else None})
            for r in rows
        ]


def _where(location: str) -> str:
    if location.endswith(":0"):
        return f"{location.removesuffix(':0')} (the whole file)"
    return location


def render_record(record: RejectedRecord) -> str:
    """A rejected record whole, for a person: where it is, what is wrong, and the record itself."""
    size = len(record.exact_bytes)
    lines = [
        f"record {record.rejected_id}  ({record.source}; {record.status}; {record.attempts} attempt(s); first seen "
        f"{record.first_seen_at:%Y-%m-%d %H:%M:%S %Z}, last {record.last_attempt_at:%Y-%m-%d %H:%M:%S %Z})",
        f"location:  {_where(record.location)}",
        f"error:     {record.error_code}",
        f"message:   {record.error_message}",
    ]
    if record.csv_header is not None:
        lines.append(f"header:    {record.csv_header}")
    if record.raw_bytes is None:
        lines.append(f"raw ({size:,} bytes, exactly as received):")
    else:
        lines.append(
            f"raw ({size:,} bytes kept exactly in raw_bytes, sha256 {record.record_hash[:16]}...; shown with "
            "\\xNN for bytes that are not UTF-8 and for control characters; `--raw` writes the bytes):"
        )
    lines.append(record.raw)
    return "\n".join(lines)


def brief(message: str, width: int = LIST_MESSAGE_WIDTH) -> str:
    """A message for one table row: whole when it fits, else cut after its last complete fault or clause (never
    mid-word), with a pointer to the whole record."""
    if len(message) <= width:
        return message
    cut = max(message.rfind("; ", 0, width - 2), message.rfind(" (", 0, width - 2))
    if cut < width // 2:
        cut = message.rfind(" ", 0, width - 2)
    return message[: cut if cut > 0 else width - 2].rstrip(" ;,") + " …"


def list_records(engine: sa.Engine, *, status: str = "open", limit: int = 50) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                select rejected_id, source, location, error_code, status, attempts, first_seen_at, error_message
                from ops.rejected_records
                where :status = 'all' or status = :status
                order by rejected_id
                limit :limit
                """
            ),
            {"status": status, "limit": limit},
        ).mappings()
        return [
            {
                "id": r["rejected_id"],
                "source": r["source"],
                "location": r["location"],
                "error_code": r["error_code"],
                "status": r["status"],
                "attempts": r["attempts"],
                "first_seen": f"{r['first_seen_at']:%Y-%m-%d %H:%M}",
                "message": brief(r["error_message"]),
            }
            for r in rows
        ]
