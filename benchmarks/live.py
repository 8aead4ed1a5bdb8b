"""Does the live loop keep up (issue 18)? Starts the product as ``scripts/dev`` does (``e2a dev``: embedded
PostgreSQL, sensors, schedules, demo feed) in a fresh temporary E2A_HOME, waits until every asset has been
materialized once (the bootstrap), then for N minutes drops a small event file every 20 s with orders whose
timelines it knows and records, per drop, the seconds from the file landing to its orders' rows in
marts.fct_sla_evaluations, and to the narrative of the exception one of them opens. Prints JSON.

    .venv/bin/python benchmarks/live.py                  # 30 minutes
    .venv/bin/python benchmarks/live.py --minutes 10
    .venv/bin/python benchmarks/live.py --check-bootstrap  # only: every asset materialized, how long, no failure

Figures: latency p50/p95/max (s), runs launched and failed (during the drops; and during the bootstrap), the
largest number of queued runs seen, the CPU share of the machine used by the product (every process of
`e2a dev` and of its PostgreSQL, sampled every second: CPU of processes shorter than that is missed), and the
seconds Ctrl-C took to stop everything."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402

from e2a_dagster.defs.automation import SLA_BUILD_TAG  # noqa: E402
from e2a_dagster.lib import dev_server  # noqa: E402

BOOTSTRAP_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Product:
    """`e2a dev` in a temporary home, and the handles to watch it: its process tree, its database, its
    Dagster instance."""

    def __init__(self, home: Path, port: int):
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("E2A_", "DAGSTER_"))}
        self.env.update(E2A_HOME=str(home), PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
        self.log = open(home / "e2a-dev.out", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "e2a"), "dev", "--port", str(port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self._cpu: dict[int, float] = {}

    def database_url(self) -> str:
        out = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "e2a"), "db", "url"], env=self.env, capture_output=True, text=True
        )
        return out.stdout.strip()

    def processes(self) -> list[psutil.Process]:
        procs = []
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        pid_file = self.home / "pgdata" / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, psutil.NoSuchProcess):
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            procs += [postmaster, *postmaster.children(recursive=True)]
        return procs

    def sample_cpu(self) -> None:
        """Last-seen CPU seconds of every process of the product (processes come and go: runs, dbt)."""
        for p in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                t = p.cpu_times()
                self._cpu[p.pid] = t.user + t.system

    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def stop(self) -> float:
        """Ctrl-C, as a person would; seconds until `e2a dev` exited."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        took = time.monotonic() - started
        subprocess.run([str(ROOT / ".venv" / "bin" / "e2a"), "db", "stop"], env=self.env, capture_output=True)
        self.log.close()
        return round(took, 1)


class Runs:
    """The Dagster instance of the home, read directly (run storage)."""

    def __init__(self, home: Path):
        import dagster as dg

        self.dg = dg
        self.instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        self.max_queued = 0

    def sample(self) -> None:
        queued = self.instance.get_runs_count(filters=self.dg.RunsFilter(statuses=[self.dg.DagsterRunStatus.QUEUED]))
        self.max_queued = max(self.max_queued, queued)

    def counts(self, since: datetime) -> dict[str, int]:
        records = self.instance.get_run_records(filters=self.dg.RunsFilter(created_after=since))
        statuses = [r.dagster_run.status.value for r in records]
        return {"launched": len(statuses), "failed": statuses.count("FAILURE"), "queued_now": statuses.count("QUEUED")}

    def phases(self, since: datetime, drops: list[dict]) -> dict:
        """Where a drop's latency goes: per job, the seconds runs waited in the queue and ran (medians, p95),
        and the median seconds of each of its steps; per drop, the seconds from landing until the ingestion run
        that took it was created, and from that run's end until the next SLA-model build was created (none when
        the ingestion run is that build)."""
        records = self.instance.get_run_records(filters=self.dg.RunsFilter(created_after=since))
        by_job: dict[str, list] = {}
        for r in records:
            by_job.setdefault(r.dagster_run.job_name, []).append(r)
        jobs = {}
        for job, rs in sorted(by_job.items()):
            started = [r for r in rs if r.start_time and r.end_time]
            waits = [r.start_time - r.create_timestamp.timestamp() for r in started]
            spans = [r.end_time - r.start_time for r in started]
            steps: dict[str, list[float]] = {}
            for r in started:
                for stat in self.instance.get_run_step_stats(r.dagster_run.run_id):
                    if stat.start_time and stat.end_time:
                        steps.setdefault(stat.step_key, []).append(stat.end_time - stat.start_time)
            jobs[job] = {
                "runs": len(rs),
                "queued": summary(waits),
                "ran": summary(spans),
                "step_p50_s": {key: percentile(values, 0.5) for key, values in sorted(steps.items())},
            }
        ingests = sorted(
            (r for r in records if r.dagster_run.job_name == "ingest_landing_events_job" and r.end_time),
            key=lambda r: r.create_timestamp,
        )
        builds = sorted(
            (r.create_timestamp.timestamp() for r in records if r.dagster_run.tags.get(SLA_BUILD_TAG)),
        )
        to_ingest, to_build = [], []
        for drop in drops:
            ingest = next((r for r in ingests if r.create_timestamp.timestamp() >= drop["landed"]), None)
            if ingest is None:
                continue
            to_ingest.append(ingest.create_timestamp.timestamp() - drop["landed"])
            if ingest.dagster_run.tags.get(SLA_BUILD_TAG):
                continue  # the ingestion run is the SLA build of its wave (no second run to wait for)
            build = next((b for b in builds if b >= ingest.end_time), None)
            if build is not None:
                to_build.append(build - ingest.end_time)
        return {
            "by_job": jobs,
            "landing_to_ingestion_run_created": summary(to_ingest),
            "ingestion_end_to_sla_build_created": summary(to_build),
        }

    def unmaterialized(self, keys) -> list[str]:
        return sorted(k.to_user_string() for k in keys if self.instance.get_latest_materialization_event(k) is None)


def asset_keys() -> list:
    from e2a_dagster.definitions import defs

    return sorted(defs().resolve_asset_graph().materializable_asset_keys, key=lambda k: k.to_user_string())


def drop_orders(events_dir: Path, tag: str, number: int, now: datetime, *, overdue: bool) -> tuple[Path, list[str]]:
    """A file with two orders created and paid a minute ago (their pick and ship clocks start: rows in
    fct_sla_evaluations) and, with ``overdue``, one paid a week ago with nothing since (its pick stage is
    overdue: an exception, then a narrative). Written under a dot name, then renamed: it lands whole."""
    orders = []
    records = []
    for i, paid in enumerate([now - timedelta(minutes=1)] * 2 + ([now - timedelta(days=7)] if overdue else [])):
        order_id = f"BENCH-{tag}-{number:04d}-{i}"
        orders.append(order_id)
        for kind, at in (("order_created", paid - timedelta(minutes=2)), ("order_paid", paid)):
            records.append(
                {
                    "event_id": f"{order_id}-{kind}",
                    "tenant_id": "acme",
                    "source": "oms",
                    "event_type": kind,
                    "order_id": order_id,
                    "occurred_at": at.isoformat(timespec="seconds"),
                }
            )
    partial = events_dir / f".bench-{tag}-{number:04d}.jsonl"
    partial.write_text("".join(json.dumps(r) + "\n" for r in records))
    final = events_dir / partial.name.lstrip(".")
    partial.rename(final)
    return final, orders


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 1)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_s": percentile(values, 0.5),
        "p95_s": percentile(values, 0.95),
        "max_s": round(max(values), 1) if values else None,
        "mean_s": round(statistics.fmean(values), 1) if values else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to drop files (default 30)")
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between drops (default 20)")
    parser.add_argument("--check-bootstrap", action="store_true", help="only measure the first materializations")
    parser.add_argument("--keep", action="store_true", help="keep the temporary E2A_HOME")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="e2a-live-"))
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    product = Product(home, free_port())
    result: dict = {"home": str(home), "machine_cpus": psutil.cpu_count(), "interval_s": args.interval}
    try:
        if not dev_server.wait_until_ready(product.url, product.proc, timeout=300):
            raise SystemExit(f"e2a dev did not come up; see {home / 'e2a-dev.out'}")
        result["ui_ready_s"] = round(time.monotonic() - t0, 1)
        runs = Runs(home)
        keys = asset_keys()
        missing = runs.unmaterialized(keys)
        while missing and time.monotonic() - t0 < BOOTSTRAP_TIMEOUT_S:
            product.sample_cpu()
            runs.sample()
            time.sleep(2)
            missing = runs.unmaterialized(keys)
        result["bootstrap"] = {
            "every_asset_materialized_s": round(time.monotonic() - t0, 1) if not missing else None,
            "assets": len(keys),
            "never_materialized": missing,
            "runs": runs.counts(started_at),
            "max_queued": runs.max_queued,
        }
        if not args.check_bootstrap:
            result["drops"] = measure(product, runs, home, args)
    finally:
        result["stop_s"] = product.stop()
        with contextlib.suppress(Exception):
            result["unfinished_runs_after_stop"] = len(dev_server.unfinished_runs(Runs(home).instance))
        if not args.keep:
            import shutil

            shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


def measure(product: Product, runs: Runs, home: Path, args) -> dict:
    events_dir = home / "landing" / "events"
    db = psycopg.connect(product.database_url(), autocommit=True)
    tag = datetime.now(UTC).strftime("%H%M%S")
    window_start = datetime.now(UTC)
    runs.max_queued = 0
    product.sample_cpu()
    cpu_start, wall_start = product.cpu_seconds(), time.monotonic()
    deadline = wall_start + args.minutes * 60
    pending: list[dict] = []
    done: list[dict] = []
    number = 0
    next_drop = time.monotonic()
    while time.monotonic() < deadline or (pending and time.monotonic() < deadline + 120):
        now = time.monotonic()
        if now >= next_drop and now < deadline:
            overdue = number % 3 == 0
            _, orders = drop_orders(events_dir, tag, number, datetime.now(UTC), overdue=overdue)
            pending.append(
                {
                    "at": time.monotonic(),
                    "landed": time.time(),
                    "orders": orders,
                    "overdue": orders[-1] if overdue else None,
                }
            )
            number += 1
            next_drop += args.interval
        for drop in pending:
            if "evaluated_s" not in drop:
                n = db.execute(
                    "select count(distinct order_id) from marts.fct_sla_evaluations where order_id = any(%s)",
                    (drop["orders"],),
                ).fetchone()[0]
                if n == len(drop["orders"]):
                    drop["evaluated_s"] = time.monotonic() - drop["at"]
            if drop["overdue"] and "narrated_s" not in drop:
                n = db.execute(
                    "select count(*) from actions.exception_narratives as n join marts.fct_sla_exceptions as e "
                    "using (exception_id) where e.order_id = %s",
                    (drop["overdue"],),
                ).fetchone()[0]
                if n:
                    drop["narrated_s"] = time.monotonic() - drop["at"]
        done += [d for d in pending if "evaluated_s" in d and (not d["overdue"] or "narrated_s" in d)]
        pending = [d for d in pending if d not in done]
        product.sample_cpu()
        runs.sample()
        time.sleep(0.5)
    wall = time.monotonic() - wall_start
    cpu = product.cpu_seconds() - cpu_start
    db.close()
    drops = done + pending
    evaluated = [d["evaluated_s"] for d in drops if "evaluated_s" in d]
    narrated = [d["narrated_s"] for d in drops if "narrated_s" in d]
    return {
        "minutes": args.minutes,
        "files_dropped": len(drops),
        "landing_to_evaluation": {**summary(evaluated), "never": len(drops) - len(evaluated)},
        "landing_to_narrative": {
            **summary(narrated),
            "never": sum(1 for d in drops if d["overdue"]) - len(narrated),
        },
        "runs": runs.counts(window_start),
        "max_queued": runs.max_queued,
        "cpu_share": round(cpu / (wall * (psutil.cpu_count() or 1)), 3),
        "phases": runs.phases(window_start, drops),
    }


if __name__ == "__main__":
    sys.exit(main())
