"""Benchmark: what the daily billing partitions save the nightly invoice guard (issue 5).

A simulated history (default 100,000 orders over 30 days, with the billing system's invoices) is loaded into a
fresh database and the SLA models are built once (as_of = the end of the history). Then, alternately and
``--repeat`` times, side by side in the same run:

  - full:  the billable activity rebuilt for every day (`dbt run` of int_billable_activities_metered without
           a window: what every nightly run did before the partitions) ;
  - day:   the billable activity rebuilt for the last day of the history only (the 02:00 run's window);
  - months: the monthly models that follow either (pricing, expected charges, reconciliation).

For each, the wall time of the dbt command (process start, parse, run) and the model's own execution time
from dbt's run_results.json. Ratios: day / full for the activity, and the nightly run before
(full + months) vs now (day + months). The table after a one-day refresh must equal the full rebuild
(row count and an md5 over every row): ``identical``. Prints JSON.

    .venv/bin/python benchmarks/invoice_refresh.py [--orders 100000] [--days 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

BENCH_DB = "e2a_bench_invoice_refresh"
ACTIVITY = "int_billable_activities_metered"
CHECKSUM_SQL = f"""
select count(*), md5(string_agg(
    concat_ws('|', tenant_id, order_id, charge_code, quantity, activity_at, activity_date, source_event_ids::text),
    ',' order by tenant_id, order_id, charge_code))
from intermediate.{ACTIVITY}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--end", default="2026-04-10T00:00:00+00:00", help="end of the history (the as_of)")
    args = parser.parse_args(argv)

    import psycopg

    from e2a_dagster.lib.core.database import make_engine, resolve_connection
    from e2a_dagster.lib.core.dbt import run_dbt
    from e2a_dagster.lib.core.reference import Reference
    from e2a_dagster.lib.core.schema import migrate
    from e2a_dagster.lib.core.settings import SEEDS_DIR, load_settings
    from e2a_dagster.lib.ingestion.ingest import ingest_file, pending_files
    from e2a_dagster.lib.invoicing.billing import ingest_billing_file, pending_billing_files
    from e2a_dagster.lib.simulator.simulator import simulate_history
    from e2a_dagster.lib.sla.calendar import calendar_from_seeds, calendar_window, data_range, write_calendar

    server = resolve_connection(load_settings())
    with psycopg.connect(server.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{BENCH_DB}" with (force)')
        conn.execute(f'create database "{BENCH_DB}"')
    info = server.with_dbname(BENCH_DB)
    engine = make_engine(info)
    migrate(engine)
    reference = Reference.load()
    end = datetime.fromisoformat(args.end).astimezone(UTC)
    as_of = {"as_of": end.isoformat()}

    setup: dict[str, float] = {}
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="e2a-invoice-refresh-"))
    events_dir, billing_dir = work / "events", work / "billing"
    events_dir.mkdir()
    simulate_history(
        reference,
        events_dir,
        orders=args.orders,
        days=args.days,
        seed=args.seed,
        end=end,
        billing_dir=billing_dir,
        ground_truth_dir=work / "truth",
    )
    setup["simulate_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    run_dbt(["seed", "--quiet"], info)
    events = sum(ingest_file(engine, p, reference).loaded for p in pending_files(events_dir))
    lines = sum(ingest_billing_file(engine, p, reference).loaded for p in pending_billing_files(billing_dir))
    first, last = calendar_window(end.date(), *data_range(engine))
    write_calendar(engine, calendar_from_seeds(SEEDS_DIR, first, last))
    setup["ingest_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    base = ["--exclude", "resource_type:seed", "--quiet", "--vars"]
    run_dbt(["run", "--select", "+fct_orders", "+fct_sla_evaluations", *base, json.dumps(as_of)], info)
    run_dbt(["run", "--select", f"{ACTIVITY}", "tag:invoice", *base, json.dumps(as_of)], info)
    setup["first_build_s"] = round(time.perf_counter() - started, 1)
    with psycopg.connect(info.url(), autocommit=True) as conn:
        conn.execute("analyze")

    day: date = (end - timedelta(days=1)).date()  # the last complete day of the history
    window = {**as_of, "billing_from": day.isoformat(), "billing_to": day.isoformat()}

    def timed(select: list[str], dbt_vars: dict) -> dict:
        with tempfile.TemporaryDirectory() as target:
            t0 = time.perf_counter()
            run_dbt(["run", "--select", *select, *base, json.dumps(dbt_vars)], info, target_path=Path(target))
            wall = time.perf_counter() - t0
            results = json.loads((Path(target) / "run_results.json").read_text())["results"]
        return {"wall_s": wall, "model_s": sum(r["execution_time"] for r in results)}

    def checksum() -> tuple:
        with engine.connect() as conn:
            return tuple(conn.exec_driver_sql(CHECKSUM_SQL).one())

    samples: dict[str, list[dict]] = {"full": [], "day": [], "months": []}
    identical = True
    for _ in range(args.repeat):
        samples["full"].append(timed([ACTIVITY], as_of))
        reference_rows = checksum()
        samples["day"].append(timed([ACTIVITY], window))
        identical = identical and checksum() == reference_rows
        samples["months"].append(timed(["tag:invoice", "--exclude", "tag:billable_daily"], as_of))

    def median(name: str, field: str) -> float:
        return round(statistics.median(s[field] for s in samples[name]), 3)

    figures = {name: {f: median(name, f) for f in ("wall_s", "model_s")} for name in samples}
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"select count(*) from intermediate.{ACTIVITY}").scalar_one()
        day_rows = conn.exec_driver_sql(
            f"select count(*) from intermediate.{ACTIVITY} where activity_date = %s", (day,)
        ).scalar_one()
    engine.dispose()
    nightly_before = figures["full"]["wall_s"] + figures["months"]["wall_s"]
    nightly_now = figures["day"]["wall_s"] + figures["months"]["wall_s"]
    print(
        json.dumps(
            {
                "benchmark": "invoice_refresh",
                "params": {"orders": args.orders, "days": args.days, "seed": args.seed, "repeat": args.repeat},
                "history": {
                    "events": events,
                    "invoice_lines": lines,
                    "activities": rows,
                    "activities_on_day": day_rows,
                },
                "setup": setup,
                "median": figures,
                "ratio_activity_day_vs_full_model_s": round(figures["day"]["model_s"] / figures["full"]["model_s"], 3),
                "ratio_activity_day_vs_full_wall_s": round(figures["day"]["wall_s"] / figures["full"]["wall_s"], 3),
                "nightly_before_wall_s": round(nightly_before, 2),
                "nightly_now_wall_s": round(nightly_now, 2),
                "ratio_nightly_now_vs_before": round(nightly_now / nightly_before, 3),
                "identical": identical,
            },
            indent=2,
        )
    )
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
