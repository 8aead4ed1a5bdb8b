"""The landing sensors' cursor: pure helpers and the sensors themselves through ``build_sensor_context``
(coalescing against real run records: tests/e2e/test_live_loop.py)."""

from __future__ import annotations

import os

import dagster as dg

from sensors.cursors import FileCursor, FileStamp, new_files, run_key

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


def test_run_keys_are_stable():
    stamps = [FileStamp(i, f"f{i}.jsonl", 10) for i in range(5)]
    assert run_key("events", stamps[:2]) == run_key("events", list(stamps[:2]))
    assert run_key("events", stamps[:2]) != run_key("events", stamps[2:4])
    changed = [FileStamp(0, "f0.jsonl", 11), stamps[1]]
    assert run_key("events", changed) != run_key("events", stamps[:2])
    assert run_key("events", stamps).startswith("events:f0.jsonl..f4.jsonl:")


def test_landing_sensor_requests_one_run_for_every_new_file(tmp_path, monkeypatch):
    from sensors.landing_events import landing_events_sensor

    monkeypatch.setenv("E2A_HOME", str(tmp_path))
    monkeypatch.delenv("E2A_LANDING_DIR", raising=False)
    events = tmp_path / "landing" / "events"
    with dg.DagsterInstance.ephemeral() as instance:
        ctx = dg.build_sensor_context(instance=instance, cursor=None)
        assert isinstance(landing_events_sensor(ctx), dg.SkipReason)
        events.mkdir(parents=True)
        for i in range(25):
            path = events / f"batch-{i:02d}.jsonl"
            path.write_text("{}\n")
            os.utime(path, ns=(1_000 * SEC + i, 1_000 * SEC + i))
        (events / ".hidden.jsonl").write_text("{}\n")
        (events / "notes.txt").write_text("ignored")
        result = landing_events_sensor(dg.build_sensor_context(instance=instance, cursor=None))
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests
        # the run loads everything pending when it starts: no file list fixed at request time
        assert request.run_config == {}
        assert request.run_key.startswith("events:batch-00.jsonl..batch-24.jsonl:")
        assert request.tags["e2a/files"] == "25"
        # Next tick with the advanced cursor: nothing new.
        nothing = landing_events_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert isinstance(nothing, dg.SkipReason)
        assert "no new files" in nothing.skip_message


def test_billing_sensor_takes_invoice_files_for_the_billing_job(tmp_path, monkeypatch):
    from sensors.landing_billing import landing_billing_sensor

    monkeypatch.setenv("E2A_HOME", str(tmp_path))
    monkeypatch.delenv("E2A_LANDING_DIR", raising=False)
    billing = tmp_path / "landing" / "billing"
    billing.mkdir(parents=True)
    for name in ("INV-1.csv", "INV-1.csv.part", "events.jsonl"):
        (billing / name).write_text("invoice_id\n")
        os.utime(billing / name, ns=(1_000 * SEC, 1_000 * SEC))  # settled long ago
    with dg.DagsterInstance.ephemeral() as instance:
        result = landing_billing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests
    assert request.run_key.startswith("billing:INV-1.csv..INV-1.csv:")
    assert request.tags["e2a/files"] == "1"
