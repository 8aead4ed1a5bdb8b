"""Landing files as raw records: each record's exact bytes or the fault that keeps it from being text, and the
next record read as if nothing happened (lib/ingestion/raw_records.py)."""

from __future__ import annotations

import gzip
import io

from e2a_dagster.lib.ingestion.events import printable
from e2a_dagster.lib.ingestion.raw_records import KEPT_BYTES, MAX_RECORD_BYTES, csv_records, jsonl_records, sniff_file


def _jsonl(data: bytes) -> list[tuple]:
    return [(r.line, r.data, r.text, r.fault.code if r.fault else None) for r in jsonl_records(io.BytesIO(data))]


def _csv(data: bytes) -> list[tuple]:
    return [(r.line, r.cells, r.raw.fault.code if r.raw.fault else None) for r in csv_records(io.BytesIO(data))]


def test_jsonl_bom_crlf_blank_lines_and_bad_bytes_each_stay_in_their_record():
    data = b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{"b": "\x00"}\n{"c": "\xff"}\n{"d": 4}'
    assert _jsonl(data) == [
        (1, b'{"a": 1}', '{"a": 1}', None),  # the BOM is not part of the record; CRLF is a line end
        (4, b'{"b": "\x00"}', None, "invalid_text"),
        (5, b'{"c": "\xff"}', None, "invalid_encoding"),
        (6, b'{"d": 4}', '{"d": 4}', None),  # no line end at the end of the file
    ]


def test_a_line_over_the_limit_is_cut_to_its_head_and_the_next_line_reads():
    huge = b"x" * (MAX_RECORD_BYTES + 5)
    [big, after] = list(jsonl_records(io.BytesIO(huge + b"\r\n" + b'{"ok": true}\n')))
    assert (big.line, big.fault.code, big.data, big.size) == (1, "record_too_long", huge[:KEPT_BYTES], len(huge))
    assert (after.line, after.text) == (2, '{"ok": true}')


def test_csv_multi_line_cells_and_a_quote_that_never_closes():
    data = b'a,b\r\n1,"two\r\nlines"\r\n2,"never closed\r\n3,three\r\n4,"x""y"\r\n'
    assert _csv(data) == [
        (1, ["a", "b"], None),
        (2, ["1", "two\r\nlines"], None),
        (4, None, "malformed_csv"),  # only this line: reading resumes on the next one
        (5, ["3", "three"], None),
        (6, ["4", 'x"y'], None),
    ]


def test_csv_bad_bytes_and_nul_are_faults_of_their_record_only():
    data = b"\xef\xbb\xbfa,b\n1,\xe9\n2,\x00\n3,ok\n"
    assert _csv(data) == [
        (1, ["a", "b"], None),
        (2, None, "invalid_encoding"),
        (3, None, "invalid_text"),
        (4, ["3", "ok"], None),
    ]


def test_files_that_are_not_text_are_recognised_and_text_with_a_bad_byte_is_not(tmp_path):
    cases = {
        "archive.jsonl": gzip.compress(b'{"a": 1}\n' * 50),
        "sheet.csv": b"PK\x03\x04" + b"\x00" * 100,
        "utf16.csv": "a,b\n1,2\n".encode("utf-16"),
        "noise.jsonl": bytes(range(256)) * 32,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        fault = sniff_file(tmp_path / name)
        assert fault is not None and fault.code == "binary_file", name
    (tmp_path / "one-nul.jsonl").write_bytes(b'{"a": 1}\n' * 200 + b'{"b": "\x00"}\n' + b'{"c": 3}\n' * 200)
    assert sniff_file(tmp_path / "one-nul.jsonl") is None  # one bad record, not a binary file
    (tmp_path / "empty.csv").write_bytes(b"")
    assert sniff_file(tmp_path / "empty.csv") is None
    assert sniff_file(tmp_path / "missing.csv").code == "unreadable_file"


def test_printable_escapes_what_a_terminal_or_postgres_text_cannot_show():
    assert printable(b"ok \xe2\x9c\x93\ttab\nline") == "ok ✓\ttab\nline"  # unchanged
    assert printable(b"a\x00b\x1b[31m\xffc\r") == "a\\x00b\\x1b[31m\\xffc\\x0d"
