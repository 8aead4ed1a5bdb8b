"""Landing files as raw records, with a boundary around each one (DESIGN §4.4).

Reading a landing file never raises over what the file contains. Each record (a JSONL line, a CSV record that may
span several physical lines) comes out with its exact bytes and, when it could be read as text, its text; a
record that cannot (invalid UTF-8, a NUL byte, an unterminated quote, more than ``MAX_RECORD_BYTES``) comes out
with a ``Fault`` instead, and the next record is read as if nothing happened. A UTF-8 byte order mark is what it
is (``utf-8-sig``), and CRLF line ends are line ends.

A file that is not text at all (an archive, an image, UTF-16, random bytes) or that cannot be opened is one fault
for the whole file (``sniff_file``): the caller records it once and goes on with the other files.

The bytes of a rejected record are kept losslessly (``ops.rejected_records.raw_bytes``) next to a readable text
(``printable``: invalid bytes and control characters as backslash escapes). Only a record over the size limit is
kept in part: its first ``KEPT_BYTES``, its size and its SHA-256 (the file itself is where the rest is)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from e2a_dagster.lib.ingestion.events import Fault

BOM = b"\xef\xbb\xbf"
MAX_RECORD_BYTES = 1 << 20  # 1 MiB: a canonical event or invoice line is well under 4 KiB
KEPT_BYTES = 64 << 10  # what the DLQ keeps of a longer record
SNIFF_BYTES = 8192
_CHUNK = 1 << 20

# First bytes of formats that are never a landing file (a wrong export, an archive dropped by mistake).
_MAGIC = {
    b"\x1f\x8b": "a gzip archive",
    b"PK\x03\x04": "a zip archive (or an .xlsx workbook)",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ\x00": "an xz archive",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an Office (OLE) document",
    b"\xff\xfe": "UTF-16 text (send UTF-8)",
    b"\xfe\xff": "UTF-16 text (send UTF-8)",
}
# Bytes that do not occur in text: C0 controls other than tab, line feed, form feed and carriage return.
_BINARY_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


@dataclass(slots=True)
class RawRecord:
    """One record of a landing file: where it starts, its bytes, and its text or what is wrong with it."""

    line: int  # first physical line, 1-based
    data: bytes  # as in the file, line end removed (the first KEPT_BYTES when the record is too long)
    text: str | None  # decoded, BOM removed; None when ``fault`` is set
    fault: Fault | None = None
    size: int = -1  # bytes in the file (more than len(data) when truncated)

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


def record_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Whole files


def sniff_file(path: Path) -> Fault | None:
    """Why ``path`` cannot be read as a landing file at all (``unreadable_file``, ``binary_file``), else None.

    A text file with a few bad bytes is *not* binary: those records are rejected one by one. A file is binary
    when it starts like a known binary format, or when its first 8 KiB hold NUL bytes or control bytes in more
    than 10 % of their length, or cannot be UTF-8 in more than 30 % of it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return Fault("unreadable_file", f"the file cannot be read: {exc.strerror or exc}")
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return Fault("binary_file", f"the file is {what}, not UTF-8 text (JSON lines or CSV)")
    body = head.removeprefix(BOM)
    if not body:
        return None
    control = sum(1 for b in body if b in _BINARY_BYTES)
    undecodable = len(body) - len(body.decode("utf-8", "ignore").encode("utf-8"))
    # a multi-byte character cut at the end of the sample is not a fault
    undecodable = max(0, undecodable - 3)
    if control > len(body) // 10 or (body.count(0) > 1 and body.count(0) > len(body) // 100):
        return Fault("binary_file", f"the file is binary ({control} control bytes in its first {len(body)})")
    if undecodable > len(body) * 3 // 10:
        return Fault(
            "binary_file", f"the file is not UTF-8 text ({undecodable} of its first {len(body)} bytes are not)"
        )
    return None


def file_head(path: Path) -> bytes:
    """The first ``KEPT_BYTES`` of a file (what the DLQ keeps of a file rejected whole); empty if unreadable."""
    try:
        with path.open("rb") as fh:
            return fh.read(KEPT_BYTES)
    except OSError:
        return b""


# --------------------------------------------------------------------------------------------------------------
# Physical lines


# A physical line: (number, bytes with its line end, size in the file: more than the bytes when over the limit).
_Line = tuple[int, bytes, int]


def _physical_lines(fh: BinaryIO, limit: int = MAX_RECORD_BYTES) -> Iterator[_Line]:
    """Lines with their line ends; a line over ``limit`` bytes is consumed in chunks and comes out cut to
    ``KEPT_BYTES`` with its full size, its line end aside (memory stays bounded whatever the file holds)."""
    number = 0
    readline = fh.readline
    while True:
        chunk = readline(limit + 1)
        if not chunk:
            return
        number += 1
        if number == 1 and chunk.startswith(BOM):
            chunk = chunk[len(BOM) :]
        if len(chunk) <= limit or chunk.endswith(b"\n"):
            yield number, chunk, len(chunk)
        else:
            yield number, chunk[:KEPT_BYTES], _rest_of_line(readline, chunk)


def _rest_of_line(readline, chunk: bytes) -> int:
    """Consume the rest of a line over the limit; its size in bytes, its line end aside."""
    size = len(chunk)
    previous = b""
    while not chunk.endswith(b"\n"):
        previous, chunk = chunk, readline(_CHUNK)
        if not chunk:
            return size
        size += len(chunk)
    return size - (2 if (chunk.endswith(b"\r\n") or (chunk == b"\n" and previous.endswith(b"\r"))) else 1)


def _strip_line_end(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _too_long(line: int, data: bytes, size: int) -> RawRecord:
    return RawRecord(
        line,
        data[:KEPT_BYTES],
        None,
        Fault(
            "record_too_long",
            f"the record is {size:,} bytes; the limit is {MAX_RECORD_BYTES:,} (its first {KEPT_BYTES:,} bytes "
            "are kept here, the rest is in the file)",
        ),
        size,
    )


def _decode(line: int, data: bytes) -> RawRecord:
    """A complete record's bytes as text, or the fault that keeps it from being text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawRecord(
            line,
            data,
            None,
            Fault(
                "invalid_encoding",
                f"the record is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason})",
            ),
            len(data),
        )
    if "\x00" in text:
        return RawRecord(
            line,
            data,
            None,
            Fault(
                "invalid_text",
                f"the record contains a NUL byte (offset {data.index(0)}), which PostgreSQL text cannot hold",
            ),
            len(data),
        )
    return RawRecord(line, data, text, None, len(data))


# --------------------------------------------------------------------------------------------------------------
# JSON lines


def jsonl_records(fh: BinaryIO) -> Iterator[RawRecord]:
    """Every non-blank line of a JSON-lines file as a raw record (JSON is parsed by the caller). The loop of
    ``_physical_lines`` and ``_decode``, inlined: this is the loader's hot path."""
    number = 0
    readline = fh.readline
    limit = MAX_RECORD_BYTES
    while True:
        chunk = readline(limit + 1)
        if not chunk:
            return
        number += 1
        if number == 1 and chunk.startswith(BOM):
            chunk = chunk[len(BOM) :]
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            yield _too_long(number, chunk, _rest_of_line(readline, chunk))
            continue
        data = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1] if chunk.endswith(b"\n") else chunk
        if not data.strip():
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            yield _decode(number, data)
            continue
        if "\x00" in text:
            yield _decode(number, data)
            continue
        yield RawRecord(number, data, text, None, len(data))


# --------------------------------------------------------------------------------------------------------------
# CSV


@dataclass(frozen=True)
class CsvRecord:
    """A CSV record: its raw record and, when it parsed, its cells."""

    raw: RawRecord
    cells: list[str] | None

    @property
    def line(self) -> int:
        return self.raw.line


def _parse_cells(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text), strict=True), [])


def csv_records(fh: BinaryIO) -> Iterator[CsvRecord]:
    """Every non-blank record of a CSV file (RFC 4180: a quoted cell may hold line ends). A quote that is never
    closed makes its line a ``malformed_csv`` record, and reading resumes on the next line, so one stray quote
    cannot swallow the rest of the file."""
    lines = _physical_lines(fh)
    pushed: deque[_Line] = deque()

    def next_line() -> _Line | None:
        if pushed:
            return pushed.popleft()
        return next(lines, None)

    while True:
        first = next_line()
        if first is None:
            return
        number, chunk, size = first
        if size > len(chunk) or size > MAX_RECORD_BYTES:
            yield CsvRecord(_too_long(number, chunk, size), None)
            continue
        taken = [first]
        quotes = chunk.count(b'"')
        # An odd number of quote characters so far: a quoted cell continues on the next line.
        while quotes % 2 == 1:
            following = next_line()
            if following is None or following[2] > len(following[1]) or size + following[2] > MAX_RECORD_BYTES:
                if following is not None:
                    pushed.appendleft(following)
                # Unterminated: this line alone is the bad record; the lines taken after it are read again.
                pushed.extendleft(reversed(taken[1:]))
                data = _strip_line_end(chunk)
                yield CsvRecord(
                    RawRecord(
                        number,
                        data,
                        None,
                        Fault("malformed_csv", "a quoted cell is never closed (unbalanced '\"')"),
                        len(data),
                    ),
                    None,
                )
                taken = []
                break
            taken.append(following)
            size += following[2]
            quotes += following[1].count(b'"')
        if not taken:
            continue
        data = _strip_line_end(b"".join(t[1] for t in taken))
        if not data.strip():
            continue
        raw = _decode(number, data)
        if raw.fault is not None:
            yield CsvRecord(raw, None)
            continue
        try:
            cells = _parse_cells(raw.text or "")
        except csv.Error as exc:
            yield CsvRecord(RawRecord(raw.line, data, None, Fault("malformed_csv", f"not CSV: {exc}"), len(data)), None)
            continue
        if not any(cell.strip() for cell in cells):
            continue
        yield CsvRecord(raw, cells)
