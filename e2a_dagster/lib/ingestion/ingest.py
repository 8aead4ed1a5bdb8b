"""Landing-zone ingestion: stream a JSONL/CSV file of canonical events into ``raw.order_events``.

- Each record is read inside its own boundary (``raw_records.py``) and validated (``events.py``); good rows go
  in with ``COPY``, bad ones into ``ops.rejected_records`` with their exact bytes, ``file:line``, an error code and
  a message. Nothing a record contains (NUL, invalid UTF-8, control characters, a 100 MB line) stops the file.
- A file that is not text at all (binary) or cannot be read is one DLQ row for the whole file (``file:0``); a CSV
  whose header is wrong puts every data line in the DLQ (``invalid_header``) with the header beside it, so a
  replay after the fix loses nothing.
- One file = one transaction, including its ledger row in ``ops.ingested_files`` (keyed by content hash): a crash
  mid-file leaves nothing behind, and a re-dropped file is a no-op.
- Memory stays flat: the file is read line by line, in batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlalchemy as sa

from e2a_dagster.lib.core.database import TRANSIENT_DB_ERRORS, raw_connection, with_db_retries
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.ingestion.events import (
    COLUMNS,
    FIELDS,
    Fault,
    Rejected,
    csv_record,
    parse_json_line,
    parse_record,
    printable,
    to_row,
)
from e2a_dagster.lib.ingestion.raw_records import RawRecord, csv_records, file_head, jsonl_records, sniff_file

log = logging.getLogger(__name__)

SOURCE = "landing"
BATCH_SIZE = 20_000
EVENT_SUFFIXES = (".jsonl", ".csv")
REQUIRED_CSV_COLUMNS = ("event_id", "tenant_id", "source", "event_type", "order_id", "occurred_at")
_COLS = ", ".join(COLUMNS)
_KEY = "tenant_id, source, event_id"
# Columns compared to tell a re-sent identical event from a conflicting one with the same id.
_CONTENT = (
    "event_type, order_id, occurred_at, warehouse_id, carrier, service_level, tracking_number, units, lines, "
    "cartons, postage, promised_ship_by, promised_deliver_by, attributes"
)


class IngestError(RuntimeError):
    """Loading a file failed for a reason that is not its content (a bug, the database); names file and line."""


class _CallerError(Exception):
    """An exception raised by the caller's ``progress`` callback: passed on as it is."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


@dataclass
class FileResult:
    file_name: str
    content_hash: str
    records: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: bool = False  # the ledger says this content was loaded before
    file_rejected: str | None = None  # error code when the whole file was rejected (binary, unreadable)
    reject_codes: dict[str, int] = field(default_factory=dict)
    line: int = 0  # the last line read (where a failure happened)

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
    """A rejected record. ``raw`` is readable text; ``raw_bytes`` the exact bytes when ``raw`` is not them (not
    UTF-8, NUL or control characters escaped, a record cut to its first bytes); ``header`` the CSV header the
    record is read with."""

    location: str
    raw: str
    fault: Rejected
    raw_bytes: bytes | None = None
    header: str | None = None

    @classmethod
    def of(cls, location: str, record: RawRecord, fault: Rejected, header: str | None = None) -> Rejection:
        return cls.from_bytes(location, record.data, fault, header=header, truncated=record.truncated)

    @classmethod
    def from_bytes(
        cls, location: str, data: bytes, fault: Rejected, *, header: str | None = None, truncated: bool = False
    ) -> Rejection:
        text = data.decode("utf-8", "surrogateescape")
        shown = printable(text)
        exact = shown == text and not truncated
        return cls(location, shown, fault, None if exact else data, header)

    def row(self, source: str) -> tuple:
        raw, raw_bytes = self.raw, self.raw_bytes
        if raw_bytes is None and printable(raw) != raw:
            # text from elsewhere (an API page, a conflicting payload) that PostgreSQL text cannot hold as is
            raw_bytes = raw.encode("utf-8", "surrogatepass")
            raw = printable(raw)
        digest_of = raw_bytes if raw_bytes is not None else raw.encode("utf-8")
        return (
            source,
            self.location,
            raw,
            hashlib.sha256(digest_of).hexdigest(),
            self.fault.code,
            printable(self.fault.message),
            raw_bytes,
            self.header,
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
    files = []
    for p in directory.iterdir():
        try:
            if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES and not p.name.startswith("."):
                files.append((p.stat().st_mtime_ns, p.name, p))
        except OSError:  # vanished between listing and stat
            continue
    return [p for *_, p in sorted(files)]


# ------------------------------------------------------------------------------------------------------------------
# Reading records


# (line number, row, rejection, origin): the origin of a good row (its raw record and CSV header) is what the DLQ
# keeps should PostgreSQL refuse it or should it conflict with an event loaded before.
Origin = tuple[RawRecord, str | None]
Parsed = tuple[int, tuple | None, Rejection | None, Origin | None]


def _unexpected(record: RawRecord, exc: Exception) -> Rejected:
    log.exception("validating line %s failed unexpectedly", record.line)
    return Rejected([Fault("validation_error", f"the record could not be validated: {type(exc).__name__}: {exc}")])


def _read_jsonl(path: Path, reference: Reference) -> Iterator[Parsed]:
    name = path.name
    with path.open("rb") as fh:
        for record in jsonl_records(fh):
            line = record.line
            if record.fault is not None:
                yield line, None, Rejection.of(f"{name}:{line}", record, Rejected([record.fault])), None
                continue
            try:
                event, payload = parse_json_line(record.text, reference)  # type: ignore[arg-type]
            except Rejected as exc:
                yield line, None, Rejection.of(f"{name}:{line}", record, exc), None
            except Exception as exc:  # the boundary: one record never stops the file
                yield line, None, Rejection.of(f"{name}:{line}", record, _unexpected(record, exc)), None
            else:
                yield line, to_row(event, payload, name, line), None, (record, None)


def csv_header_fault(header: list[str], fields: Sequence[str], required: Sequence[str]) -> str | None:
    """What is wrong with a CSV header (unknown, repeated or missing columns), or None."""
    unknown = [h for h in header if h not in fields]
    repeated = sorted({h for h in header if header.count(h) > 1})
    missing = [f for f in required if f not in header]
    problems = []
    if unknown:
        problems.append(f"unknown columns {unknown}")
    if repeated:
        problems.append(f"repeated columns {repeated}")
    if missing:
        problems.append(f"missing columns {missing}")
    if not problems:
        return None
    return "the CSV header has " + ", ".join(problems) + f" (the columns are: {', '.join(fields)})"


def read_csv_with_header(
    path: Path, fields: Sequence[str], required: Sequence[str]
) -> Iterator[tuple[RawRecord, dict[str, str] | None, Rejection | None, str]]:
    """The data records of a CSV file as (raw record, column -> cell, rejection, header line). Structural faults
    (encoding, quoting, column count) and a wrong header become rejections; with a wrong header, every data line
    does, with the header beside it (``invalid_header``), so that nothing is lost and a replay after the fix
    loads them."""
    name = path.name
    with path.open("rb") as fh:
        records = csv_records(fh)
        first = next(records, None)
        if first is None:
            return
        header_text = first.raw.text if first.raw.text is not None else printable(first.raw.data)
        if first.cells is None:
            problem = f"the header line cannot be read ({first.raw.fault.message if first.raw.fault else '?'})"
            header: list[str] = []
        else:
            header = [h.strip() for h in first.cells]
            problem = csv_header_fault(header, fields, required)
        if problem is not None:
            seen = False
            for record in records:
                seen = True
                fault = Rejected(
                    [Fault("invalid_header", f"{problem}; the line is kept whole: fix the header, then e2a dlq replay")]
                )
                rejection = Rejection.of(f"{name}:{record.line}", record.raw, fault, header=header_text)
                yield record.raw, None, rejection, header_text
            if not seen:
                fault = Rejected([Fault("invalid_header", f"{problem} (and no data line)")])
                yield first.raw, None, Rejection.of(f"{name}:{first.line}", first.raw, fault), header_text
            return
        for record in records:
            location = f"{name}:{record.line}"
            if record.cells is None:
                fault = Rejected([record.raw.fault or Fault("malformed_csv", "not CSV")])
                yield record.raw, None, Rejection.of(location, record.raw, fault, header=header_text), header_text
            elif len(record.cells) != len(header):
                fault = Rejected([Fault("malformed_csv", f"expected {len(header)} columns, found {len(record.cells)}")])
                yield record.raw, None, Rejection.of(location, record.raw, fault, header=header_text), header_text
            else:
                yield record.raw, dict(zip(header, record.cells, strict=True)), None, header_text


def _read_csv(path: Path, reference: Reference) -> Iterator[Parsed]:
    name = path.name
    for raw, cells, rejection, header in read_csv_with_header(path, FIELDS, REQUIRED_CSV_COLUMNS):
        if rejection is not None:
            yield raw.line, None, rejection, None
            continue
        assert cells is not None
        location = f"{name}:{raw.line}"
        try:
            record = csv_record(cells)
            event = parse_record(record, reference)
        except Rejected as exc:
            yield raw.line, None, Rejection.of(location, raw, exc, header=header), None
        except Exception as exc:  # the boundary: one record never stops the file
            yield raw.line, None, Rejection.of(location, raw, _unexpected(raw, exc), header=header), None
        else:
            payload = json.dumps(record, default=str)
            yield raw.line, to_row(event, payload, name, raw.line), None, (raw, header)


def read_events(path: Path, reference: Reference) -> Iterator[Parsed]:
    if path.suffix.lower() == ".csv":
        return _read_csv(path, reference)
    return _read_jsonl(path, reference)


BATCH_BYTES = 64 << 20  # a batch also ends at this many bytes of records (records may be up to 1 MiB each)


def _batches(items: Iterable[Parsed], size: int, max_bytes: int = BATCH_BYTES) -> Iterator[list[Parsed]]:
    batch: list[Parsed] = []
    held = 0
    for item in items:
        batch.append(item)
        origin = item[3]
        held += len(origin[0].data) if origin is not None else 0
        if len(batch) >= size or held >= max_bytes:
            yield batch
            batch = []
            held = 0
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
        insert into ops.rejected_records
          (source, location, raw, record_hash, error_code, error_message, raw_bytes, csv_header)
        values (%s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (source, location, record_hash) do update
           set attempts = ops.rejected_records.attempts + 1,
               last_attempt_at = now(),
               error_code = excluded.error_code,
               error_message = excluded.error_message
        """,
        [r.row(source) for r in rejections],
    )


# What PostgreSQL may refuse in a record the validator let through (a JSON escape jsonb cannot hold, say).
_REFUSED = (psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)


def _load_batch(
    cur: psycopg.Cursor, rows: list[tuple], name: str, origins: dict[int, Origin] | None = None
) -> tuple[int, list[Rejection]]:
    """COPY one batch; a row PostgreSQL refuses (rare: text the validator let through) is isolated and rejected.
    ``origins`` (line number -> raw record, header) lets the DLQ keep such rows as they were received."""
    origins = origins or {}

    def rejected(line_number: int, payload: str, fault: Rejected) -> Rejection:
        origin = origins.get(line_number)
        if origin is None:
            return Rejection(f"{name}:{line_number}", payload, fault)
        return Rejection.of(f"{name}:{line_number}", origin[0], fault, header=origin[1])

    rejections: list[Rejection] = []
    try:
        with cur.connection.transaction():
            _copy_rows(cur, rows)
    except _REFUSED:
        for row in rows:
            try:
                with cur.connection.transaction():
                    _copy_rows(cur, [row])
            except _REFUSED as exc:
                fault = Rejected([Fault("invalid_text", f"PostgreSQL refused the record: {exc.diag.message_primary}")])
                rejections.append(rejected(row[-1], str(row[COLUMNS.index("payload")]), fault))
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
        rejections.append(rejected(line_number, payload, fault))
    return inserted, rejections


class _RejectSpool:
    """Rejections of one file, kept in memory up to a bound and spilled to a temporary file beyond it."""

    def __init__(self, limit: int = 5_000, max_bytes: int = 32 << 20):
        self.limit = limit
        self.max_bytes = max_bytes
        self.items: list[Rejection] = []
        self.spill: tempfile.TemporaryFile | None = None
        self.count = 0
        self.held = 0

    def add(self, rejection: Rejection) -> None:
        self.items.append(rejection)
        self.count += 1
        self.held += len(rejection.raw) + len(rejection.raw_bytes or b"")
        if len(self.items) >= self.limit or self.held >= self.max_bytes:
            if self.spill is None:
                self.spill = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            pickle.dump(self.items, self.spill)
            self.items = []
            self.held = 0

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
        for line, row, rejection, _ in parsed:
            result.line = line
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
        rows = [row for _, row, _, _ in batch if row is not None]
        origins = {line: origin for line, row, _, origin in batch if row is not None and origin is not None}
        for _, _, rejection, _ in batch:
            if rejection is not None:
                spool.add(rejection)
        result.records += len(batch)
        result.line = batch[-1][0]
        if rows:
            inserted, refused = _load_batch(cur, rows, name, origins)
            result.loaded += inserted
            result.duplicates += len(rows) - inserted - len(refused)
            for rejection in refused:
                spool.add(rejection)
        if progress is not None:
            progress(result)


def reject_whole_file(engine: sa.Engine, path: Path, source: str, fault: Fault, content_hash: str | None) -> FileResult:
    """One DLQ row for a file that cannot be read as records (``file:0``); a binary file goes in the ledger too
    (its content will not change), an unreadable one does not (the next run tries again)."""
    result = FileResult(file_name=path.name, content_hash=content_hash or "", records=1, rejected=1)
    result.file_rejected = fault.code
    result.reject_codes[fault.code] = 1
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    message = f"{fault.message}; the whole file is rejected (path {path}, {size:,} bytes"
    message += f", sha256 {content_hash})" if content_hash else ")"
    rejection = Rejection.from_bytes(
        f"{path.name}:0", file_head(path), Rejected([Fault(fault.code, message)]), truncated=True
    )
    with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
        if content_hash:
            cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (content_hash,))
            if cur.execute("select 1 from ops.ingested_files where content_hash = %s", (content_hash,)).fetchone():
                return FileResult(file_name=path.name, content_hash=content_hash, skipped=True)
        record_rejections(cur, source, [rejection])
        if content_hash:
            write_ledger(cur, content_hash, source, path.name, size, result)
    log.warning("rejected the whole file %s: %s", path.name, message)
    return result


def write_ledger(cur: psycopg.Cursor, content_hash: str, source: str, name: str, size: int, result: FileResult) -> None:
    cur.execute(
        """
        insert into ops.ingested_files
          (content_hash, source, file_name, size_bytes, record_count, loaded_count, duplicate_count,
           rejected_count)
        values (%s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (content_hash, source, name, size, result.records, result.loaded, result.duplicates, result.rejected),
    )


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
    ``progress`` is called every ``batch_size`` records, inside the transaction: if it raises, nothing is kept.

    Content never raises: bad records go to the DLQ, a binary or unreadable file is one DLQ row. What does
    raise is the database going away (``TRANSIENT_DB_ERRORS``: run it again) and ``IngestError`` for anything
    else, naming the file and line."""
    try:
        content_hash = file_hash(path)
    except OSError as exc:
        return reject_whole_file(engine, path, source, Fault("unreadable_file", f"cannot read the file: {exc}"), None)
    fault = sniff_file(path)
    if fault is not None:
        return reject_whole_file(engine, path, source, fault, content_hash)
    result = FileResult(file_name=path.name, content_hash=content_hash)
    spool = _RejectSpool()
    caller = progress

    def report(current: FileResult) -> None:
        try:
            caller(current)  # type: ignore[misc]
        except BaseException as exc:
            raise _CallerError(exc) from exc

    progress = report if caller is not None else None

    def read() -> Iterator[Parsed]:
        return read_events(path, reference)

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
                    _stream_copy(cur, read(), result, spool, progress, batch_size)
            except (psycopg.errors.UniqueViolation, *_REFUSED) as exc:
                log.info("%s: fast path not possible (%s); loading in batches", path.name, type(exc).__name__)
                spool.close()
                spool = _RejectSpool()
                fresh = FileResult(file_name=path.name, content_hash=content_hash)
                result.__dict__.update(fresh.__dict__)
                _batched_load(cur, read(), path.name, result, spool, progress, batch_size)
            for chunk in spool.chunks():
                record_rejections(cur, source, chunk)
                for rej in chunk:
                    result.reject_codes[rej.fault.code] = result.reject_codes.get(rej.fault.code, 0) + 1
            result.rejected = spool.count
            write_ledger(cur, content_hash, source, path.name, path.stat().st_size, result)
    except _CallerError as exc:
        raise exc.original from None
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        raise IngestError(f"{path.name}:{result.line}: loading failed: {type(exc).__name__}: {exc}") from exc
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
    return [p for p in pending(directory) if _hash_or_none(p) not in done], []


def _hash_or_none(path: Path) -> str | None:
    try:
        return file_hash(path)
    except OSError:  # unreadable: loading it records why (unreadable_file)
        return None


def load_files(
    paths: Iterable[Path],
    load: Callable[[Path], FileResult],
    *,
    db_retry_base: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[FileResult], list[str]]:
    """Load each file on its own, so one file never blocks the others: the database going away is retried with
    backoff (the file's transaction runs again), any other failure is reported as ``file:line: reason`` and the
    next file goes on. Returns the results and the failures."""
    results: list[FileResult] = []
    failures: list[str] = []
    for path in paths:
        try:
            results.append(with_db_retries(lambda p=path: load(p), base=db_retry_base, sleep=sleep))
        except IngestError as exc:
            log.error("%s", exc)
            failures.append(str(exc))
        except TRANSIENT_DB_ERRORS as exc:
            log.error("%s: the database stayed unavailable: %s", path.name, exc)
            failures.append(f"{path.name}: the database stayed unavailable ({type(exc).__name__}: {exc})")
    return results, failures


def total_reject_codes(results: Iterable[FileResult]) -> dict[str, int]:
    """Rejected records by error code over several files."""
    codes: dict[str, int] = {}
    for result in results:
        for code, n in result.reject_codes.items():
            codes[code] = codes.get(code, 0) + n
    return codes
