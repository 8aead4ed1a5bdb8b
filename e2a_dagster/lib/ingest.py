"""Landing-zone ingestion: stream a JSONL/CSV file of canonical events into ``raw.order_events``.

- Each record is validated (``events.py``); good rows go in with ``COPY`` into a temporary table and one
  ``INSERT … ON CONFLICT DO NOTHING`` per batch, bad ones into ``ops.rejected_records``.
- One file = one transaction, including its ledger row in ``ops.ingested_files`` (keyed by content hash): a crash
  mid-file leaves nothing behind, and a re-dropped file is a no-op.
- Memory stays flat: the file is read line by line, in batches.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlalchemy as sa

from e2a_dagster.lib.database import raw_connection
from e2a_dagster.lib.events import (
    COLUMNS,
    FIELDS,
    Fault,
    Rejected,
    csv_record,
    parse_json_line,
    parse_record,
    to_row,
)
from e2a_dagster.lib.reference import Reference

log = logging.getLogger(__name__)

SOURCE = "landing"
BATCH_SIZE = 20_000
EVENT_SUFFIXES = (".jsonl", ".csv")
_COLS = ", ".join(COLUMNS)
_KEY = "tenant_id, source, event_id"
# Columns compared to tell a re-sent identical event from a conflicting one with the same id.
_CONTENT = (
    "event_type, order_id, occurred_at, warehouse_id, carrier, service_level, tracking_number, units, lines, "
    "cartons, postage, attributes"
)


@dataclass
class FileResult:
    file_name: str
    content_hash: str
    records: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: bool = False  # the ledger says this content was loaded before
    reject_codes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "file": self.file_name,
            "records": self.records,
            "loaded": self.loaded,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Rejection:
    location: str
    raw: str
    fault: Rejected

    def row(self, source: str) -> tuple:
        return (
            source,
            self.location,
            self.raw,
            hashlib.sha256(self.raw.encode("utf-8", "surrogatepass")).hexdigest(),
            self.fault.code,
            self.fault.message,
        )


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pending_files(directory: Path) -> list[Path]:
    """Event files in the landing folder, oldest first; hidden and partial (``.tmp``/``.part``) files are not."""
    if not directory.exists():
        return []
    files = [
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


# ------------------------------------------------------------------------------------------------------------------
# Reading records


Parsed = tuple[int, tuple | None, Rejection | None]  # (line number, row, rejection)


def _read_jsonl(path: Path, reference: Reference) -> Iterator[Parsed]:
    name = path.name
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            try:
                event, payload = parse_json_line(stripped, reference)
            except Rejected as exc:
                yield number, None, Rejection(f"{name}:{number}", stripped.decode("utf-8", "replace"), exc)
            except UnicodeDecodeError as exc:
                fault = Rejected([Fault("invalid_encoding", f"line is not valid UTF-8: {exc.reason}")])
                yield number, None, Rejection(f"{name}:{number}", stripped.decode("utf-8", "replace"), fault)
            else:
                yield number, to_row(event, payload, name, number), None


def _read_csv(path: Path, reference: Reference) -> Iterator[Parsed]:
    name = path.name
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        unknown = [h for h in header if h not in FIELDS]
        if unknown or len(set(header)) != len(header):
            text = ",".join(header)
            fault = Rejected([Fault("invalid_header", f"CSV header has unknown or repeated columns: {unknown}")])
            yield 1, None, Rejection(f"{name}:1", text, fault)
            return
        for row in reader:
            number = reader.line_num
            raw_text = _csv_line(row)
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                fault = Rejected([Fault("malformed_csv", f"expected {len(header)} columns, found {len(row)}")])
                yield number, None, Rejection(f"{name}:{number}", raw_text, fault)
                continue
            as_dict = dict(zip(header, row, strict=True))
            try:
                record = csv_record(as_dict)
                event = parse_record(record, reference)
            except Rejected as exc:
                yield number, None, Rejection(f"{name}:{number}", raw_text, exc)
            else:
                payload = json.dumps(record, default=str)
                yield number, to_row(event, payload, name, number), None


def _csv_line(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return buf.getvalue()


def read_events(path: Path, reference: Reference) -> Iterator[Parsed]:
    if path.suffix.lower() == ".csv":
        return _read_csv(path, reference)
    return _read_jsonl(path, reference)


def _batches(items: Iterable[Parsed], size: int) -> Iterator[list[Parsed]]:
    batch: list[Parsed] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------------------------------------------
# Writing


_TEMP_DDL = """
create temp table if not exists _incoming_events
  (like raw.order_events including defaults) on commit drop
"""


def _copy_rows(cur: psycopg.Cursor, rows: list[tuple]) -> None:
    with cur.copy(f"copy _incoming_events ({_COLS}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_batch(cur: psycopg.Cursor) -> tuple[int, list[tuple[int, str]]]:
    """Move the temp batch into raw.order_events; returns (rows inserted, conflicting duplicates)."""
    cur.execute(
        f"""
        insert into raw.order_events ({_COLS})
        select distinct on ({_KEY}) {_COLS} from _incoming_events
        order by {_KEY}, line_number
        on conflict ({_KEY}) do nothing
        """
    )
    inserted = cur.rowcount
    staged = cur.execute("select count(*) from _incoming_events").fetchone()[0]
    conflicts: list[tuple[int, str]] = []
    if inserted < staged:
        # Some ids were there already (or repeated in the batch). Identical content is a no-op; the same id with
        # other content is a conflict the sender must hear about, so it goes to the DLQ instead of vanishing.
        conflicts = cur.execute(
            f"""
            select i.line_number, i.payload::text
            from _incoming_events i
            join raw.order_events r using ({_KEY})
            where not (r.ingested_at = now() and r.line_number = i.line_number)  -- not the row this file just added
              and ({", ".join("r." + c for c in _CONTENT.split(", "))})
                  is distinct from ({", ".join("i." + c for c in _CONTENT.split(", "))})
            order by i.line_number
            """
        ).fetchall()
    cur.execute("truncate _incoming_events")
    return inserted, conflicts


def record_rejections(cur: psycopg.Cursor, source: str, rejections: list[Rejection]) -> None:
    if not rejections:
        return
    cur.executemany(
        """
        insert into ops.rejected_records (source, location, raw, record_hash, error_code, error_message)
        values (%s, %s, %s, %s, %s, %s)
        on conflict (source, location, record_hash) do update
           set attempts = ops.rejected_records.attempts + 1,
               last_attempt_at = now(),
               error_code = excluded.error_code,
               error_message = excluded.error_message
        """,
        [r.row(source) for r in rejections],
    )


def _load_batch(cur: psycopg.Cursor, rows: list[tuple], name: str) -> tuple[int, list[Rejection]]:
    """COPY one batch; a row PostgreSQL refuses (rare: text the validator let through) is isolated and rejected."""
    rejections: list[Rejection] = []
    try:
        with cur.connection.transaction():
            _copy_rows(cur, rows)
    except psycopg.errors.DataError:
        good = []
        for row in rows:
            try:
                with cur.connection.transaction():
                    _copy_rows(cur, [row])
                good.append(row)
            except psycopg.errors.DataError as exc:
                fault = Rejected([Fault("invalid_text", f"PostgreSQL refused the record: {exc.diag.message_primary}")])
                rejections.append(Rejection(f"{name}:{row[-1]}", str(row[COLUMNS.index("payload")]), fault))
    inserted, conflicts = _insert_batch(cur)
    for line_number, payload in conflicts:
        fault = Rejected(
            [
                Fault(
                    "conflicting_duplicate",
                    "an event with this (tenant_id, source, event_id) was loaded before "
                    "with different content; the first version is kept",
                )
            ]
        )
        rejections.append(Rejection(f"{name}:{line_number}", payload, fault))
    return inserted, rejections


class _RejectSpool:
    """Rejections of one file, kept in memory up to a bound and spilled to a temporary file beyond it."""

    def __init__(self, limit: int = 5_000):
        self.limit = limit
        self.items: list[Rejection] = []
        self.spill: tempfile.TemporaryFile | None = None
        self.count = 0

    def add(self, rejection: Rejection) -> None:
        self.items.append(rejection)
        self.count += 1
        if len(self.items) >= self.limit:
            if self.spill is None:
                self.spill = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            pickle.dump(self.items, self.spill)
            self.items = []

    def chunks(self) -> Iterator[list[Rejection]]:
        if self.spill is not None:
            self.spill.seek(0)
            while True:
                try:
                    yield pickle.load(self.spill)
                except EOFError:
                    break
        if self.items:
            yield self.items

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()


def _stream_copy(
    cur: psycopg.Cursor,
    parsed: Iterator[Parsed],
    result: FileResult,
    spool: _RejectSpool,
    progress: Callable[[FileResult], None] | None,
    every: int,
) -> None:
    """Fast path: one COPY straight into raw.order_events while the file is parsed (PostgreSQL works on one
    batch while Python parses the next). Raises UniqueViolation if any event exists already."""
    with cur.copy(f"copy raw.order_events ({_COLS}) from stdin") as copy:
        for _, row, rejection in parsed:
            result.records += 1
            if row is not None:
                copy.write_row(row)
                result.loaded += 1
            else:
                spool.add(rejection)
            if progress is not None and result.records % every == 0:
                progress(result)


def _batched_load(
    cur: psycopg.Cursor,
    parsed: Iterator[Parsed],
    name: str,
    result: FileResult,
    spool: _RejectSpool,
    progress: Callable[[FileResult], None] | None,
    batch_size: int,
) -> None:
    """Safe path: batches through a temp table and ON CONFLICT DO NOTHING (re-sent events, conflicts)."""
    cur.execute(_TEMP_DDL)
    cur.execute("truncate _incoming_events")
    for batch in _batches(parsed, batch_size):
        rows = [row for _, row, _ in batch if row is not None]
        for _, _, rejection in batch:
            if rejection is not None:
                spool.add(rejection)
        result.records += len(batch)
        if rows:
            inserted, refused = _load_batch(cur, rows, name)
            result.loaded += inserted
            result.duplicates += len(rows) - inserted - len(refused)
            for rejection in refused:
                spool.add(rejection)
        if progress is not None:
            progress(result)


def ingest_file(
    engine: sa.Engine,
    path: Path,
    reference: Reference,
    *,
    source: str = SOURCE,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[FileResult], None] | None = None,
) -> FileResult:
    """Load one file in one transaction. Re-running on the same content is a no-op (``skipped``).

    New events stream straight into the table with one COPY; if any of them exists already (a re-sent event),
    that attempt is rolled back to a savepoint and the file is loaded through the batched ON CONFLICT path.
    ``progress`` is called every ``batch_size`` records, inside the transaction: if it raises, nothing is kept."""
    content_hash = file_hash(path)
    result = FileResult(file_name=path.name, content_hash=content_hash)
    spool = _RejectSpool()
    try:
        with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
            # Two runs racing on one file: the second waits, then sees the ledger row.
            cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (content_hash,))
            done = cur.execute("select 1 from ops.ingested_files where content_hash = %s", (content_hash,)).fetchone()
            if done:
                result.skipped = True
                return result
            try:
                with conn.transaction():
                    _stream_copy(cur, read_events(path, reference), result, spool, progress, batch_size)
            except (psycopg.errors.UniqueViolation, psycopg.errors.DataError) as exc:
                log.info("%s: fast path not possible (%s); loading in batches", path.name, type(exc).__name__)
                spool.close()
                spool = _RejectSpool()
                result = FileResult(file_name=path.name, content_hash=content_hash)
                _batched_load(cur, read_events(path, reference), path.name, result, spool, progress, batch_size)
            for chunk in spool.chunks():
                record_rejections(cur, source, chunk)
                for rej in chunk:
                    result.reject_codes[rej.fault.code] = result.reject_codes.get(rej.fault.code, 0) + 1
            result.rejected = spool.count
            cur.execute(
                """
                insert into ops.ingested_files
                  (content_hash, source, file_name, size_bytes, record_count, loaded_count, duplicate_count,
                   rejected_count)
                values (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    content_hash,
                    source,
                    path.name,
                    path.stat().st_size,
                    result.records,
                    result.loaded,
                    result.duplicates,
                    result.rejected,
                ),
            )
    finally:
        spool.close()
    log.info("ingested %s: %s", path.name, result.as_dict())
    return result


def ingested_hashes(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(sa.text("select content_hash from ops.ingested_files"))}


def files_to_load(
    directory: Path, names: Sequence[str], pending: Callable[[Path], list[Path]], done_hashes: Callable[[], set[str]]
) -> tuple[list[Path], list[str]]:
    """What a file-loading run takes from ``directory``: the ``names`` asked for that still exist (and the names
    that are gone), or, when none are named, every ``pending`` file whose content is not in the ledger yet."""
    if names:
        paths = [directory / name for name in names]
        return [p for p in paths if p.exists()], [p.name for p in paths if not p.exists()]
    done = done_hashes()
    return [p for p in pending(directory) if file_hash(p) not in done], []


def total_reject_codes(results: Iterable[FileResult]) -> dict[str, int]:
    """Rejected records by error code over several files."""
    codes: dict[str, int] = {}
    for result in results:
        for code, n in result.reject_codes.items():
            codes[code] = codes.get(code, 0) + n
    return codes
