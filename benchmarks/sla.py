"""Benchmark: does an SLA refresh cost follow new data rather than history? (issue 3)

For each history size (default 100k and 1M orders, at the same orders-per-day rate, so a bigger history
is a longer one ending now): a fresh database, the simulator's history ingested through the fast COPY
path, the warehouse calendar, then
  - full_build_s:    `dbt run` of the SLA models from scratch (--full-refresh),
  - refresh_s:       `dbt run` of the same models, live (as_of = now), after 1,000 new events were ingested,
  - refresh_build_s: the same refresh as `dbt build` (models + data tests + unit tests), for reference.
Prints JSON; the baseline is the smallest size of the same run (ratio = refresh / baseline refresh).
Targets (issue 3): refresh at 1M <= 1.5 x refresh at 100k; full build at 1M < 300 s.

    .venv/bin/python benchmarks/sla.py [--sizes 100000 1000000] [--rate 2740]

Planner statistics: after loading the history and after the full build the benchmark runs ANALYZE, as
autovacuum would within a minute on a real deployment."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

from e2a_dagster.lib.core.database import EmbeddedServer, make_engine  # noqa: E402
from e2a_dagster.lib.core.dbt import run_dbt  # noqa: E402
from e2a_dagster.lib.core.reference import Reference  # noqa: E402
from e2a_dagster.lib.core.schema import migrate  # noqa: E402
from e2a_dagster.lib.ingestion.ingest import ingest_file  # noqa: E402
from e2a_dagster.lib.simulator.simulator import Simulator, simulate_history, write_jsonl  # noqa: E402
from e2a_dagster.lib.sla.calendar import calendar_from_seeds, calendar_window, data_range, write_calendar  # noqa: E402

SELECT = ["--select", "stg_landing__order_events stg_shopify__orders int_shopify_order_events_versioned tag:sla"]
NEW_EVENTS = 1_000


def _timed(args: list[str], info) -> float:
    started = time.perf_counter()
    run_dbt(args, info)
    return round(time.perf_counter() - started, 2)


def _analyze(info) -> None:
    with psycopg.connect(info.url(), autocommit=True) as conn:
        conn.execute("analyze")


def _new_events(reference: Reference, folder: Path, count: int, tag: str) -> Path:
    """``count`` events of new recent orders (created over the last two days), all occurred by now; order and
    event ids carry ``tag`` so they never collide with the history's."""
    now = datetime.now().astimezone()
    sim = Simulator(reference, seed=99)
    events = []
    for order in sim.orders(count, now - timedelta(days=2), now):
        events.extend(e for e in order.events if e.occurred_at <= now)
        if len(events) >= count:
            break
    events = sorted(events[:count])
    path = folder / f"new-events-{tag}.jsonl"
    write_jsonl(
        path,
        (
            {**e.record, "order_id": f"{tag}-{e.record['order_id']}", "event_id": f"{tag}-{e.record['event_id']}"}
            for e in events
        ),
    )
    return path


def run_size(server_info, orders: int, rate: float, workdir: Path, keep: bool = False) -> dict:
    dbname = f"e2a_bench_{orders}"
    with psycopg.connect(server_info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
        conn.execute(f'create database "{dbname}"')
    info = server_info.with_dbname(dbname)
    engine = make_engine(info)
    migrate(engine)
    reference = Reference.load()
    run_dbt(["seed", "--quiet"], info)

    days = max(1, round(orders / rate))
    folder = workdir / f"history-{orders}"
    folder.mkdir()
    started = time.perf_counter()
    summary = simulate_history(reference, folder, orders=orders, days=days, seed=7)
    simulate_s = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    loaded = sum(ingest_file(engine, path, reference).loaded for path in sorted(folder.glob("*.jsonl")))
    ingest_s = round(time.perf_counter() - started, 1)
    shutil.rmtree(folder)
    _analyze(info)

    first, last = calendar_window(date.today(), *data_range(engine))
    write_calendar(engine, calendar_from_seeds(ROOT / "seeds", first, last))

    full_build_s = _timed(["run", *SELECT, "--full-refresh"], info)
    _analyze(info)
    # one live build so the next refreshes start from a live (not freshly full-refreshed) state
    _timed(["run", *SELECT], info)

    new_batch = _new_events(reference, workdir, NEW_EVENTS, f"n1x{orders}")
    new_loaded = ingest_file(engine, new_batch, reference).loaded
    refresh_s = _timed(["run", *SELECT], info)
    # a second batch of new events for the `dbt build` variant
    ingest_file(engine, _new_events(reference, workdir, NEW_EVENTS, f"n2x{orders}"), reference)
    refresh_build_s = _timed(["build", *SELECT], info)

    with engine.connect() as conn:
        counts = dict(
            conn.exec_driver_sql(
                "select 'events', count(*) from raw.order_events union all "
                "select 'orders', count(*) from marts.fct_orders union all "
                "select 'evaluations', count(*) from marts.fct_sla_evaluations union all "
                "select 'running_stages', count(*) from marts.fct_sla_evaluations "
                "where status in ('on_track', 'at_risk', 'overdue')"
            ).all()
        )
    engine.dispose()
    if not keep:
        with psycopg.connect(server_info.with_dbname("postgres").url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
    return {
        "orders": orders,
        "history_days": days,
        "events_loaded": loaded,
        "simulate_s": simulate_s,
        "ingest_s": ingest_s,
        "full_build_s": full_build_s,
        "new_events": new_loaded,
        "refresh_s": refresh_s,
        "refresh_build_s": refresh_build_s,
        "rows": counts,
        "history_end": summary["end"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rate", type=float, default=2740, help="orders per day of history (~1M a year)")
    parser.add_argument("--home", default=str(ROOT / ".e2a" / "bench-home"))
    parser.add_argument("--keep", action="store_true", help="keep the databases (e2a_bench_<size>) to inspect")
    args = parser.parse_args(argv)

    server = EmbeddedServer(Path(args.home)).start()
    results = []
    with tempfile.TemporaryDirectory(prefix="e2a-bench-") as tmp:
        for size in sorted(args.sizes):
            results.append(run_size(server, size, args.rate, Path(tmp), keep=args.keep))
            print(json.dumps({"progress": results[-1]}), file=sys.stderr, flush=True)
    baseline = results[0]
    for r in results:
        r["refresh_ratio_vs_baseline"] = round(r["refresh_s"] / baseline["refresh_s"], 2)
        r["refresh_build_ratio_vs_baseline"] = round(r["refresh_build_s"] / baseline["refresh_build_s"], 2)
    largest = results[-1]
    report = {
        "benchmark": "sla_refresh_vs_history",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "baseline_orders": baseline["orders"],
        "results": results,
        "targets": {
            "refresh_ratio_max": 1.5,
            "refresh_ratio": largest["refresh_ratio_vs_baseline"],
            "refresh_ratio_met": largest["refresh_ratio_vs_baseline"] <= 1.5,
            "full_build_max_s": 300,
            "full_build_s": largest["full_build_s"],
            "full_build_met": largest["full_build_s"] < 300,
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
