"""Ingestion throughput: our loader vs a bare COPY of the same rows, in the same run.

    .venv/bin/python benchmarks/ingest.py [--events 1000000]

Writes a JSONL file of simulated canonical events, then, each in its own child process:
- ``bare_copy``: streams the same rows, already rendered as COPY text, into a scratch table shaped like
  ``raw.order_events`` (same primary key): what PostgreSQL alone costs, with no parsing and no validation;
- ``bare_copy_no_index``: the same into a scratch table without the key, for reference;
- ``loader``: ``ingest_file`` on the JSONL file (parse, validate, COPY, ON CONFLICT, ledger) into a scratch schema.
The sides alternate for ``--rounds`` rounds and the best time of each counts (the machine is noisy).
Prints JSON: events/s of each, the ratio loader/bare_copy, and the loader's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from e2a_dagster.lib.core.database import ConnectionInfo, make_engine, raw_connection, resolve_connection  # noqa: E402
from e2a_dagster.lib.core.reference import Reference  # noqa: E402
from e2a_dagster.lib.core.schema import migrate  # noqa: E402
from e2a_dagster.lib.core.settings import load_settings  # noqa: E402
from e2a_dagster.lib.ingestion.events import COLUMNS, parse_json_line, to_row  # noqa: E402
from e2a_dagster.lib.simulator.simulator import Simulator  # noqa: E402

BENCH_DB = "e2a_bench"


def make_events(path: Path, count: int) -> int:
    sim = Simulator(Reference.load(), seed=1)
    end = datetime(2026, 10, 1, tzinfo=UTC)
    written = 0
    with path.open("w") as fh:
        for timeline in sim.orders(count, end - timedelta(days=90), end):
            for event in timeline.events:
                fh.write(json.dumps(event.record, separators=(",", ":")) + "\n")
                written += 1
                if written >= count:
                    return written
    return written


def render_copy_text(src: Path, dst: Path) -> None:
    """The same rows as COPY text, prepared outside the timed part of the baseline."""
    reference = Reference.load()
    tx = _CopyTextWriter(dst)
    with src.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            event, payload = parse_json_line(line.strip(), reference)
            tx.write(to_row(event, payload, src.name, n))
    tx.close()


class _CopyTextWriter:
    """Renders rows in PostgreSQL COPY text format."""

    def __init__(self, path: Path):
        self.fh = path.open("w", encoding="utf-8")

    @staticmethod
    def _cell(value) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, datetime):
            return value.isoformat()
        text = str(value)
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    def write(self, row: tuple) -> None:
        self.fh.write("\t".join(self._cell(v) for v in row) + "\n")

    def close(self) -> None:
        self.fh.close()


def _bare_copy(info: ConnectionInfo, text_path: Path, shape: str = "all") -> dict:
    engine = make_engine(info)
    with raw_connection(engine) as conn:
        conn.execute("drop table if exists bench_scratch")
        conn.execute(f"create table bench_scratch (like raw.order_events including {shape})")
        conn.commit()
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"copy bench_scratch ({', '.join(COLUMNS)}) from stdin") as copy,
            text_path.open("rb") as fh,
        ):
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                copy.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - start
        rows = conn.execute("select count(*) from bench_scratch").fetchone()[0]
        conn.execute("drop table bench_scratch")
        conn.commit()
    return {"rows": rows, "seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _loader(info: ConnectionInfo, path: Path) -> dict:
    from e2a_dagster.lib.ingestion.ingest import ingest_file

    engine = make_engine(info)
    with engine.begin() as conn:
        conn.exec_driver_sql("truncate raw.order_events, ops.ingested_files, ops.rejected_records")
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = ingest_file(engine, path, Reference.load())
    elapsed = time.perf_counter() - start
    return {
        "rows": result.loaded,
        "rejected": result.rejected,
        "seconds": elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": base_rss,
    }


def _in_child(mode: str, info: ConnectionInfo, path: Path) -> dict:
    """Run one side in a fresh interpreter, so its peak RSS is its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", info.url(), "--path", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each side counts")
    parser.add_argument("--child", choices=["bare_copy", "bare_copy_no_index", "loader"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        info, path = ConnectionInfo.from_url(args.url), Path(args.path)
        if args.child == "loader":
            out = _loader(info, path)
        else:
            out = _bare_copy(info, path, "all" if args.child == "bare_copy" else "defaults")
        print(json.dumps(out))
        return

    settings = load_settings()
    base = resolve_connection(settings)
    from e2a_dagster.lib.core.database import ensure_database

    info = base.with_dbname(BENCH_DB)
    ensure_database(info)
    engine = make_engine(info)
    migrate(engine)
    engine.dispose()

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "events.jsonl"
        t0 = time.perf_counter()
        count = make_events(src, args.events)
        gen_s = time.perf_counter() - t0
        text = Path(tmp) / "events.copy"
        render_copy_text(src, text)
        runs: dict[str, list[dict]] = {"bare_copy": [], "bare_copy_no_index": [], "loader": []}
        for _ in range(args.rounds):
            runs["bare_copy"].append(_in_child("bare_copy", info, text))
            runs["loader"].append(_in_child("loader", info, src))
            runs["bare_copy_no_index"].append(_in_child("bare_copy_no_index", info, text))
        best = {side: min(results, key=lambda r: r["seconds"]) for side, results in runs.items()}
        bare, ours, bare_noidx = best["bare_copy"], best["loader"], best["bare_copy_no_index"]
        size_mb = src.stat().st_size / 1e6
    report = {
        "events": count,
        "file_mb": round(size_mb, 1),
        "generate_seconds": round(gen_s, 1),
        "rounds": args.rounds,
        "bare_copy": {
            "seconds": round(bare["seconds"], 2),
            "events_per_s": round(bare["rows"] / bare["seconds"]),
            "table": "like raw.order_events including all (same primary key)",
        },
        "bare_copy_no_index": {
            "seconds": round(bare_noidx["seconds"], 2),
            "events_per_s": round(bare_noidx["rows"] / bare_noidx["seconds"]),
        },
        "loader": {
            "seconds": round(ours["seconds"], 2),
            "events_per_s": round(ours["rows"] / ours["seconds"]),
            "rejected": ours["rejected"],
            "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        },
        "ratio_loader_to_bare_copy": round((ours["rows"] / ours["seconds"]) / (bare["rows"] / bare["seconds"]), 3),
        "targets": {"ratio_min": 0.5, "peak_rss_mb_max": 500},
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
