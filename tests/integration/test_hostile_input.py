"""Fuzz: a landing zone of hostile files through the real ingestion assets (Dagster, PostgreSQL).

Every record of ``tests/hostile_inputs.py`` has the outcome the contract gives it, written down when the record
was made: loaded, a no-op duplicate, or one DLQ row with that error code at its ``file:line``. Nothing may be
lost (loaded + duplicates + rejected = every record), nothing may be invented, the run must succeed, and the
DLQ must hold each rejected record's exact bytes."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa

from e2a_dagster.defs.ingestion.assets import order_events
from e2a_dagster.defs.invoicing.assets import invoice_lines
from e2a_dagster.defs.resources import Database, LandingZone
from e2a_dagster.lib.ingestion.dlq import replay
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.ingestion.raw_records import KEPT_BYTES
from e2a_dagster.lib.invoicing.billing import ingest_billing_file
from tests.helpers import order_timeline, write_jsonl
from tests.hostile_inputs import DUPLICATE, LOADED, hostile_landing


@pytest.fixture(scope="module")
def landed(engine, tmp_path_factory, pg_info):
    root = tmp_path_factory.mktemp("hostile-landing")
    prefix = "HZ" + root.name[-6:].replace("_", "")
    corpus = hostile_landing(prefix, root / "events", root / "billing")
    mp = pytest.MonkeyPatch()
    mp.setenv("E2A_LANDING_DIR", str(root))
    try:
        result = dg.materialize(
            [order_events, invoice_lines],
            resources={"database": Database(), "landing": LandingZone()},
            run_config={
                "ops": {
                    "raw__order_events": {"config": {"files": corpus.event_files}},
                    "raw__invoice_lines": {"config": {"files": corpus.billing_files}},
                }
            },
            raise_on_error=False,
        )
    finally:
        mp.undo()
    yield corpus, result
    # The corpus's invoice lines (acme and globex, September 2025) would reach the reconciliation of every later
    # test in the session as hundreds of unexpected charges of the same tenants, and so trip the per-tenant run
    # guard of the tests that check auto-approval (tests/integration/test_invoice_periods.py).
    with engine.begin() as conn:
        conn.execute(sa.text("delete from raw.invoice_lines where invoice_id like :p"), {"p": f"INV-{prefix}-%"})


def _outcomes(engine, corpus) -> tuple[dict[str, dict], set[str]]:
    names = [p.name for p in corpus.files]
    with engine.connect() as conn:
        dlq = {
            r["location"]: dict(r)
            for r in conn.execute(
                sa.text(
                    "select location, error_code, error_message, raw, raw_bytes, status from ops.rejected_records "
                    "where split_part(location, ':', 1) = any(:f)"
                ),
                {"f": names},
            ).mappings()
        }
        loaded = {
            f"{r[0]}:{r[1]}"
            for r in conn.execute(
                sa.text(
                    "select file_name, line_number from raw.order_events where file_name = any(:f) "
                    "union all select file_name, line_number from raw.invoice_lines where file_name = any(:f)"
                ),
                {"f": names},
            )
        }
    return dlq, loaded


def test_every_record_is_loaded_a_duplicate_or_rejected_with_its_code(engine, landed):
    corpus, result = landed
    assert result.success  # bad data never fails the ingestion steps
    expected = corpus.expected
    assert len(expected) >= 2000
    dlq, loaded = _outcomes(engine, corpus)

    want_loaded = {e.location for e in expected if e.outcome == LOADED}
    want_rejected = {e.location: e.outcome for e in expected if e.outcome not in (LOADED, DUPLICATE)}
    duplicates = [e for e in expected if e.outcome == DUPLICATE]
    assert loaded == want_loaded
    assert {loc: row["error_code"] for loc, row in dlq.items()} == want_rejected
    # nothing lost, nothing invented: every record is exactly one of the three
    assert len(loaded) + len(duplicates) + len(dlq) == len(expected)
    assert all(row["error_message"] and row["status"] == "open" for row in dlq.values())

    codes = Counter(want_rejected.values())
    for code in (
        "invalid_text",
        "invalid_encoding",
        "control_character",
        "record_too_long",
        "malformed_json",
        "malformed_csv",
        "invalid_header",
        "binary_file",
        "invalid_quantity",
        "invalid_timestamp",
        "naive_timestamp",
        "conflicting_duplicate",
        "amount_mismatch",
    ):
        assert codes[code] > 0, code  # the corpus really covers every class

    meta = result.asset_materializations_for_node("raw__order_events")[0].metadata
    assert meta["rejected"].value == sum(1 for e in expected if e.file in corpus.event_files and e.location in dlq)
    assert meta["duplicates"].value == len(duplicates)


def test_the_dlq_keeps_every_rejected_record_exactly(engine, landed):
    corpus, _ = landed
    dlq, _ = _outcomes(engine, corpus)
    for e in corpus.expected:
        row = dlq.get(e.location)
        if row is None or e.line == 0:
            continue
        kept = bytes(row["raw_bytes"]) if row["raw_bytes"] is not None else row["raw"].encode("utf-8")
        if e.outcome == "record_too_long":
            assert kept == e.data[:KEPT_BYTES] and len(e.data) > 100 << 20
            assert f"{len(e.data):,} bytes" in row["error_message"]
        elif e.outcome == "conflicting_duplicate":
            assert kept == e.data  # the payload as received (JSON text)
        else:
            assert kept == e.data, e.location
        # the readable text never holds what PostgreSQL text or a terminal cannot show
        assert "\x00" not in row["raw"] and "\x1b" not in row["raw"]


def test_a_file_rejected_whole_is_one_row_and_the_others_go_on(engine, landed):
    corpus, _ = landed
    dlq, loaded = _outcomes(engine, corpus)
    whole = {e.file for e in corpus.expected if e.line == 0}
    assert len(whole) == 3
    for name in whole:
        row = dlq[f"{name}:0"]
        assert row["error_code"] == "binary_file" and "whole file" in row["error_message"]
        assert not any(loc.startswith(f"{name}:") and loc != f"{name}:0" for loc in dlq)
    assert len(loaded) > 900  # the other files of the same steps went in


@pytest.mark.parametrize(
    ("kind", "wrong", "right", "table", "lines"),
    [
        ("events", b"ocurred_at", b"occurred_at", "raw.order_events", 100),
        ("billing", b"unitrate", b"unit_rate", "raw.invoice_lines", 50),
    ],
)
def test_a_misspelled_header_keeps_every_line_and_a_fixed_header_replays_them(
    engine, reference, landed, kind, wrong, right, table, lines
):
    corpus, _ = landed
    dlq, _ = _outcomes(engine, corpus)
    folder = corpus.events_dir if kind == "events" else corpus.billing_dir
    name = next(p.name for p in corpus.files if p.parent == folder and p.name.endswith("misspelled.csv"))
    rows = {loc: r for loc, r in dlq.items() if loc.startswith(name + ":")}
    assert len(rows) == lines and all(wrong.decode() in r["error_message"] for r in rows.values())
    # The sender fixes the header of the file in place; a replay then loads every line through the same path.
    path = folder / name
    path.write_bytes(path.read_bytes().replace(wrong, right, 1))
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                sa.text("select rejected_id from ops.rejected_records where location like :f"), {"f": name + ":%"}
            ).scalars()
        )
    outcome = replay(engine, reference, ids=ids, events_dir=corpus.events_dir, billing_dir=corpus.billing_dir)
    assert (len(outcome.replayed), outcome.loaded_rows) == (lines, lines)
    with engine.connect() as conn:
        loaded = conn.execute(
            sa.text(f"select line_number from {table} where file_name = :f order by 1"), {"f": name}
        ).scalars()
        assert list(loaded) == [e.line for e in corpus.expected if e.file == name]


def test_a_vanished_or_unreadable_file_is_one_row_and_is_not_ledgered(engine, reference, events_dir, uid):
    gone = events_dir / f"{uid}-gone.jsonl"  # listed, then moved away before the run read it
    first = ingest_file(engine, gone, reference)
    assert (first.records, first.rejected, first.file_rejected) == (1, 1, "unreadable_file")
    billing = ingest_billing_file(engine, events_dir / f"{uid}-gone.csv", reference)
    assert billing.file_rejected == "unreadable_file"
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select location, error_code, attempts from ops.rejected_records where location like :p order by 1"
            ),
            {"p": f"{uid}-gone.%"},
        ).all()
        ledger = conn.execute(
            sa.text("select count(*) from ops.ingested_files where file_name like :p"), {"p": f"{uid}-gone.%"}
        ).scalar_one()
    assert [tuple(r) for r in rows] == [
        (f"{uid}-gone.csv:0", "unreadable_file", 1),
        (f"{uid}-gone.jsonl:0", "unreadable_file", 1),
    ]
    assert ledger == 0  # the next run tries again (the file may come back)
    assert ingest_file(engine, gone, reference).file_rejected == "unreadable_file"
    with engine.connect() as conn:
        attempts = conn.execute(
            sa.text("select attempts from ops.rejected_records where location = :l"), {"l": f"{uid}-gone.jsonl:0"}
        ).scalar_one()
    assert attempts == 2  # the same row, one more attempt: no pile of copies
    # The file comes back (moved in again, readable): a replay of its row loads it through the same path.
    write_jsonl(gone, order_timeline(f"G{uid}"))
    [row_id] = _ids(engine, f"{uid}-gone.jsonl:0")
    outcome = replay(engine, reference, ids=[row_id], events_dir=events_dir)
    assert (outcome.replayed, outcome.loaded_rows) == ([row_id], 9)


def test_a_binary_file_replays_once_a_text_file_replaces_it(engine, reference, landed):
    corpus, _ = landed
    name = next(f for f in corpus.event_files if f.endswith("-archive.jsonl"))
    [row_id] = _ids(engine, f"{name}:0")
    still = replay(engine, reference, ids=[row_id], events_dir=corpus.events_dir)
    assert still.still_failing == [row_id]  # the same bytes: still binary (and nothing waits on its own row)
    write_jsonl(corpus.events_dir / name, order_timeline(f"{corpus.prefix}-fixed"))  # the sender re-exports it
    fixed = replay(engine, reference, ids=[row_id], events_dir=corpus.events_dir)
    assert (fixed.replayed, fixed.loaded_rows) == ([row_id], 9)


def _ids(engine, location: str) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("select rejected_id from ops.rejected_records where location = :l"), {"l": location}
            ).scalars()
        )
