"""Landing-zone ingestion against the real PostgreSQL: idempotency, rejects, crash safety."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from e2a_dagster.lib.ingestion.ingest import ingest_file
from tests.helpers import order_timeline, write_csv, write_jsonl


def _raw_rows(engine, prefix: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                """
                select tenant_id, source, event_id, event_type, order_id, occurred_at, warehouse_id, carrier,
                       service_level, tracking_number, units, lines, cartons, postage, attributes
                from raw.order_events where order_id like :p order by tenant_id, source, event_id
                """
            ),
            {"p": prefix + "%"},
        ).all()


def _rejects(engine, file_name: str) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select location, error_code, error_message, raw, status, attempts from ops.rejected_records "
                    "where location like :f order by rejected_id"
                ),
                {"f": file_name + ":%"},
            ).mappings()
        ]


def test_good_file_loads_and_redrop_is_a_noop(engine, reference, events_dir, uid):
    events = order_timeline(f"T{uid}-1")
    path = write_jsonl(events_dir / f"{uid}.jsonl", events)
    first = ingest_file(engine, path, reference)
    assert (first.records, first.loaded, first.rejected, first.skipped) == (9, 9, 0, False)
    second = ingest_file(engine, path, reference)
    assert second.skipped and second.loaded == 0
    rows = _raw_rows(engine, f"T{uid}")
    assert len(rows) == 9
    label = next(r for r in rows if r.event_type == "label_printed")
    assert str(label.postage) == "7.35" and label.carrier == "ups" and label.service_level == "express"


def test_same_events_in_any_file_order_or_format_give_identical_rows(engine, reference, events_dir, uid):
    """Loading the events once, twice, shuffled across files, or as CSV: the raw rows are the same."""
    prefix = f"S{uid}"
    events = order_timeline(f"{prefix}-1") + order_timeline(
        f"{prefix}-2", tenant="globex", warehouse="BER1", offset="+01:00"
    )
    ingest_file(engine, write_jsonl(events_dir / f"{uid}-a.jsonl", events), reference)
    baseline = _raw_rows(engine, prefix)
    assert len(baseline) == 18

    # Again, reversed and split over two files plus a CSV copy: all duplicates, nothing changes.
    reversed_events = list(reversed(events))
    r1 = ingest_file(engine, write_jsonl(events_dir / f"{uid}-b.jsonl", reversed_events[:7]), reference)
    r2 = ingest_file(engine, write_jsonl(events_dir / f"{uid}-c.jsonl", reversed_events[7:]), reference)
    r3 = ingest_file(engine, write_csv(events_dir / f"{uid}-d.csv", events), reference)
    assert (r1.loaded, r2.loaded, r3.loaded) == (0, 0, 0)
    assert (r1.duplicates, r2.duplicates, r3.duplicates) == (7, 11, 18)
    assert (r1.rejected, r2.rejected, r3.rejected) == (0, 0, 0)
    assert _raw_rows(engine, prefix) == baseline


def test_csv_first_equals_jsonl_first(engine, reference, events_dir, uid):
    events_a = order_timeline(f"CA{uid}-1")
    events_b = order_timeline(f"CB{uid}-1")
    ingest_file(engine, write_jsonl(events_dir / f"{uid}-a.jsonl", events_a), reference)
    ingest_file(engine, write_csv(events_dir / f"{uid}-b.csv", events_b), reference)
    strip = lambda rows: [tuple(v.replace("CB", "CA") if isinstance(v, str) else v for v in r) for r in rows]  # noqa: E731
    assert strip(_raw_rows(engine, f"CB{uid}")) == _raw_rows(engine, f"CA{uid}")


def test_every_bad_input_class_is_rejected_with_its_own_code(engine, reference, events_dir, uid):
    good = order_timeline(f"B{uid}-1")[3]  # pick_completed at NJ1
    bad_lines = [
        '{"event_id": "broken", ',
        json.dumps({k: v for k, v in good.items() if k != "order_id"} | {"event_id": f"{uid}-m"}),
        json.dumps(good | {"event_id": f"{uid}-t", "tenant_id": "initech"}),
        json.dumps(good | {"event_id": f"{uid}-e", "event_type": "pick_finished"}),
        json.dumps(good | {"event_id": f"{uid}-n", "occurred_at": "2026-03-02T10:10:00"}),
        json.dumps(good | {"event_id": f"{uid}-q", "units": -3}),
        json.dumps(good | {"event_id": f"{uid}-p", "event_type": "label_printed", "postage": "seven"}),
        json.dumps(good | {"event_id": f"{uid}-w", "warehouse_id": None}),
    ]
    path = write_jsonl(events_dir / f"{uid}-bad.jsonl", [good, *bad_lines, ""])
    result = ingest_file(engine, path, reference)
    assert (result.loaded, result.rejected) == (1, 8)
    rejects = _rejects(engine, path.name)
    assert [r["error_code"] for r in rejects] == [
        "malformed_json",
        "missing_field",
        "unknown_tenant",
        "unknown_event_type",
        "naive_timestamp",
        "negative_quantity",
        "non_numeric_amount",
        "missing_warehouse",
    ]
    assert [r["location"] for r in rejects] == [f"{path.name}:{n}" for n in range(2, 10)]
    assert rejects[0]["raw"] == bad_lines[0]  # exactly as sent (its line end aside)
    assert all(r["status"] == "open" and r["attempts"] == 1 and r["error_message"] for r in rejects)
    assert "initech" in rejects[2]["error_message"]


def test_csv_structural_faults(engine, reference, events_dir, uid):
    path = events_dir / f"{uid}.csv"
    good = order_timeline(f"V{uid}-1")[1]
    write_csv(path, [good])
    with path.open("a") as fh:
        fh.write("only,three,cells\n")
    result = ingest_file(engine, path, reference)
    assert (result.loaded, result.rejected) == (1, 1)
    assert [r["error_code"] for r in _rejects(engine, path.name)] == ["malformed_csv"]

    header = events_dir / f"{uid}-hdr.csv"
    header.write_text("event_id,tenant,oops\n1,2,3\n")
    result = ingest_file(engine, header, reference)
    assert (result.loaded, result.rejected) == (0, 1)
    assert [r["error_code"] for r in _rejects(engine, header.name)] == ["invalid_header"]


def test_same_id_with_other_content_is_a_conflict_not_a_silent_drop(engine, reference, events_dir, uid):
    event = order_timeline(f"D{uid}-1")[3]
    ingest_file(engine, write_jsonl(events_dir / f"{uid}-1.jsonl", [event]), reference)
    changed = event | {"units": 5}
    result = ingest_file(engine, write_jsonl(events_dir / f"{uid}-2.jsonl", [event, changed]), reference)
    assert (result.loaded, result.duplicates, result.rejected) == (0, 1, 1)
    rejects = _rejects(engine, f"{uid}-2.jsonl")
    assert [r["error_code"] for r in rejects] == ["conflicting_duplicate"]
    assert json.loads(rejects[0]["raw"])["units"] == 5
    assert [r.units for r in _raw_rows(engine, f"D{uid}")] == [3]


def test_crash_mid_file_leaves_nothing_and_reload_completes(engine, reference, events_dir, uid):
    events = [
        e | {"event_id": f"{e['event_id']}-{i}", "order_id": f"X{uid}-{i}"}
        for i in range(30)
        for e in order_timeline("tmp")[:2]
    ]
    path = write_jsonl(events_dir / f"{uid}.jsonl", [*events, '{"broken'])

    class Crash(RuntimeError):
        pass

    def crash_after_first_batch(progress):
        raise Crash(f"simulated crash after {progress.records} records")

    with pytest.raises(Crash):
        ingest_file(engine, path, reference, batch_size=10, progress=crash_after_first_batch)
    assert _raw_rows(engine, f"X{uid}") == []
    assert _rejects(engine, path.name) == []
    with engine.connect() as conn:
        ledger = conn.execute(
            sa.text("select count(*) from ops.ingested_files where file_name = :f"), {"f": path.name}
        ).scalar_one()
    assert ledger == 0

    result = ingest_file(engine, path, reference, batch_size=10)
    assert (result.records, result.loaded, result.rejected) == (61, 60, 1)
    assert len(_raw_rows(engine, f"X{uid}")) == 60
