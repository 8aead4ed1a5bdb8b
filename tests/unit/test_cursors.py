"""The landing sensor's cursor: pure helpers and the sensor itself through ``build_sensor_context``."""

from __future__ import annotations

import os

import dagster as dg

from sensors.cursors import FileCursor, FileStamp, batches, new_files, run_key

SEC = 1_000_000_000


def test_new_files_advances_and_never_repeats():
    listing = [FileStamp(10 * SEC, "b.jsonl"), FileStamp(10 * SEC, "a.jsonl"), FileStamp(5 * SEC, "z.jsonl")]
    taken, cursor = new_files(listing, FileCursor(), now_ns=100 * SEC)
    assert [s.name for s in taken] == ["z.jsonl", "a.jsonl", "b.jsonl"]
    assert cursor == FileCursor(10 * SEC, ("a.jsonl", "b.jsonl"))
    again, same = new_files(listing, cursor, now_ns=100 * SEC)
    assert again == [] and same == cursor
    # A file arriving later with the same mtime as the mark is still new.
    more = [*listing, FileStamp(10 * SEC, "c.jsonl")]
    taken, cursor = new_files(more, cursor, now_ns=100 * SEC)
    assert [s.name for s in taken] == ["c.jsonl"]
    assert cursor.names == ("a.jsonl", "b.jsonl", "c.jsonl")


def test_unsettled_file_waits_and_blocks_later_ones():
    listing = [FileStamp(10 * SEC, "old.jsonl"), FileStamp(99 * SEC, "writing.jsonl")]
    taken, cursor = new_files(listing, FileCursor(), now_ns=99 * SEC + SEC // 2)
    assert [s.name for s in taken] == ["old.jsonl"]
    taken, _ = new_files(listing, cursor, now_ns=101 * SEC)
    assert [s.name for s in taken] == ["writing.jsonl"]


def test_cursor_roundtrip_and_garbage():
    cursor = FileCursor(42, ("a", "b"))
    assert FileCursor.parse(cursor.dump()) == cursor
    assert FileCursor.parse("not json") == FileCursor()
    assert FileCursor.parse(None) == FileCursor()


def test_batches_and_run_keys_are_stable():
    stamps = [FileStamp(i, f"f{i}.jsonl", 10) for i in range(5)]
    parts = batches(stamps, 2)
    assert [len(p) for p in parts] == [2, 2, 1]
    assert run_key("events", parts[0]) == run_key("events", list(parts[0]))
    assert run_key("events", parts[0]) != run_key("events", parts[1])
    changed = [FileStamp(0, "f0.jsonl", 11), parts[0][1]]
    assert run_key("events", changed) != run_key("events", parts[0])


def test_landing_sensor_requests_one_run_per_batch(tmp_path, monkeypatch):
    from sensors.landing_events import landing_events_sensor

    monkeypatch.setenv("E2A_HOME", str(tmp_path))
    monkeypatch.delenv("E2A_LANDING_DIR", raising=False)
    events = tmp_path / "landing" / "events"
    ctx = dg.build_sensor_context(cursor=None)
    assert isinstance(landing_events_sensor(ctx), dg.SkipReason)
    events.mkdir(parents=True)
    for i in range(25):
        path = events / f"batch-{i:02d}.jsonl"
        path.write_text("{}\n")
        os.utime(path, ns=(1_000 * SEC + i, 1_000 * SEC + i))
    (events / ".hidden.jsonl").write_text("{}\n")
    (events / "notes.txt").write_text("ignored")
    result = landing_events_sensor(dg.build_sensor_context(cursor=None))
    assert isinstance(result, dg.SensorResult)
    assert len(result.run_requests) == 2
    files = [r.run_config["ops"]["raw__order_events"]["config"]["files"] for r in result.run_requests]
    assert files[0][0] == "batch-00.jsonl" and len(files[0]) == 20 and files[1][-1] == "batch-24.jsonl"
    assert len({r.run_key for r in result.run_requests}) == 2
    # Next tick with the advanced cursor: nothing new.
    nothing = landing_events_sensor(dg.build_sensor_context(cursor=result.cursor))
    assert isinstance(nothing, dg.SkipReason)
    assert "no new files" in nothing.skip_message


def test_billing_sensor_takes_invoice_files_for_the_billing_asset(tmp_path, monkeypatch):
    from sensors.landing_billing import landing_billing_sensor

    monkeypatch.setenv("E2A_HOME", str(tmp_path))
    monkeypatch.delenv("E2A_LANDING_DIR", raising=False)
    billing = tmp_path / "landing" / "billing"
    billing.mkdir(parents=True)
    for name in ("INV-1.csv", "INV-1.csv.part", "events.jsonl"):
        (billing / name).write_text("invoice_id\n")
        os.utime(billing / name, ns=(1_000 * SEC, 1_000 * SEC))  # settled long ago
    result = landing_billing_sensor(dg.build_sensor_context(cursor=None))
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests
    assert request.run_config["ops"]["raw__invoice_lines"]["config"]["files"] == ["INV-1.csv"]
    assert request.run_key.startswith("billing")
