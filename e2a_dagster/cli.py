"""``e2a``: the command line (DESIGN §3)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from e2a_dagster.lib.database import EmbeddedServer, ConnectionInfo, DatabaseError, make_engine, redact, resolve_connection
from e2a_dagster.lib.reports import text_table
from e2a_dagster.lib.schema import migrate
from e2a_dagster.lib.settings import PROJECT_ROOT, Settings, load_settings

DAGSTER_YAML = """\
# Written by `e2a`: the Dagster instance of this E2A_HOME.
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
concurrency:
  default_op_concurrency_limit: 2
freshness:
  enabled: true
"""


def _prepare(settings: Settings, *, start_db: bool = True) -> ConnectionInfo:
    """State folders, database (started if embedded), schema, and the environment child processes inherit."""
    settings.ensure_dirs()
    os.environ["E2A_HOME"] = str(settings.home)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    dagster_yaml = Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml"
    if not dagster_yaml.exists():
        dagster_yaml.write_text(DAGSTER_YAML)
    info = resolve_connection(settings, start=start_db)
    engine = make_engine(info)
    try:
        migrate(engine)
        _setup_bi_roles(engine, settings)
    finally:
        engine.dispose()
    os.environ.update(info.dbt_env())
    return info


def _bi_tenants() -> list[str]:
    """Per-tenant BI roles to create: ``E2A_BI_TENANT_ROLES`` = ``all`` or a comma list of tenant ids."""
    from e2a_dagster.lib.reference import Reference

    wanted = os.environ.get("E2A_BI_TENANT_ROLES", "").strip()
    if not wanted:
        return []
    known = sorted(Reference.load().tenants)
    return known if wanted == "all" else [t.strip() for t in wanted.split(",") if t.strip()]


def _setup_bi_roles(engine, settings: Settings) -> None:
    """The read-only BI roles (lib/bi.py). Best effort: a database user without CREATEROLE gets a warning."""
    from e2a_dagster.lib.bi import BIAccessError, ensure_bi_roles

    try:
        ensure_bi_roles(engine, settings.home, _bi_tenants())
    except BIAccessError as exc:
        print(f"[e2a] warning: {exc}", file=sys.stderr)


def bi_url(settings: Settings, info: ConnectionInfo, *, reveal: bool = False, tenant: str | None = None) -> str:
    """The PostgreSQL URL a BI tool uses (TCP; the e2a_bi role or a tenant's role)."""
    from e2a_dagster.lib.bi import BI_ROLE, bi_connection, role_password, tenant_role

    role = tenant_role(tenant) if tenant else BI_ROLE
    password = role_password(role, settings.home).value
    url = bi_connection(info, role, password).url()
    return url if reveal else redact(url)


def _load_defs():
    from e2a_dagster.lib.dbt import parse_project

    parse_project()
    from e2a_dagster.definitions import defs

    return defs()


# ------------------------------------------------------------------------------------------------------------------
# e2a run


def run_pipeline(as_of: str | None = None, *, asset_selection=None, raise_on_error: bool = False):
    """One in-process pass over every asset (ingest pending files, build dbt), recorded in the Dagster instance."""
    import dagster as dg

    definitions = _load_defs()
    job = definitions.resolve_implicit_global_asset_job_def()
    run_config = {"ops": {"e2a_dbt_models": {"config": {"as_of": as_of}}}} if as_of else {}
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            run_config=run_config,
            instance=instance,
            raise_on_error=raise_on_error,
            asset_selection=asset_selection,
        )


def _summary(info: ConnectionInfo, started: datetime) -> list[dict]:
    engine = make_engine(info)
    try:
        with engine.connect() as conn:
            q = conn.exec_driver_sql
            loaded = q("select count(*) from raw.order_events where ingested_at >= %s", (started,)).scalar_one()
            rejected = q(
                "select count(*) from ops.rejected_records where last_attempt_at >= %s", (started,)
            ).scalar_one()
            open_rejects = q("select count(*) from ops.rejected_records where status = 'open'").scalar_one()
            total = q("select count(*) from raw.order_events").scalar_one()
            orders = q("select to_regclass('marts.fct_orders') is not null").scalar_one() and q(
                "select count(*) from marts.fct_orders"
            ).scalar_one()
    finally:
        engine.dispose()
    return [
        {"figure": "events loaded (this run)", "value": loaded},
        {"figure": "records rejected (this run)", "value": rejected},
        {"figure": "events in raw.order_events", "value": total},
        {"figure": "open records in the DLQ", "value": open_rejects},
        {"figure": "orders in marts.fct_orders", "value": orders if orders is not False else "n/a"},
    ]


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    info = _prepare(settings)
    started = datetime.now().astimezone() - timedelta(seconds=1)
    result = run_pipeline(args.as_of)
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    failed_checks = [
        e.event_specific_data.asset_check_evaluation.check_name  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.event_specific_data.asset_check_evaluation.passed  # type: ignore[union-attr]
    ]
    print(text_table(_summary(info, started)))
    if failed_checks:
        print(f"\nfailed checks: {', '.join(sorted(set(failed_checks)))}")
    if not result.success:
        print(f"\nrun {result.run_id} FAILED (steps: {', '.join(failed_steps) or 'unknown'}); "
              "see the Dagster UI (`e2a dev`) for details", file=sys.stderr)
        return 1
    print(f"\nrun {result.run_id} succeeded")
    return 0


# ------------------------------------------------------------------------------------------------------------------
# e2a dev


def _feed_loop(stop: threading.Event, events_dir: Path, interval: float) -> None:
    from e2a_dagster.lib.reference import Reference
    from e2a_dagster.lib.simulator import LiveFeed

    feed = LiveFeed(Reference.load(), events_dir)
    while not stop.wait(interval):
        try:
            feed.tick()
        except Exception as exc:  # the demo feed must never take `e2a dev` down
            print(f"[e2a] demo feed error: {exc}", file=sys.stderr)


def cmd_dev(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.reference import Reference
    from e2a_dagster.lib.simulator import simulate_history

    settings = load_settings()
    info = _prepare(settings)
    print(f"[e2a] database: {redact(info.url())}")
    if not any(settings.events_dir.glob("*.jsonl")) and not args.no_demo:
        summary = simulate_history(Reference.load(), settings.events_dir, orders=args.demo_orders, days=7, seed=7)
        print(f"[e2a] demo history written to {settings.events_dir}: {summary['orders']} orders, "
              f"{summary['events']} events")
    print("[e2a] loading reference data (dbt seed) ...")
    result = run_pipeline(asset_selection=_seed_keys())
    if not result.success:
        print("[e2a] loading seeds failed; see the Dagster UI", file=sys.stderr)
    stop = threading.Event()
    if not args.no_demo:
        threading.Thread(target=_feed_loop, args=(stop, settings.events_dir, 30.0), daemon=True).start()
    tcp = EmbeddedServer(settings.home).tcp_info() if not settings.database_url else info
    print(f"[e2a] Dagster UI: http://{args.host}:{args.port}")
    if tcp and not tcp.is_socket:
        from e2a_dagster.lib.bi import BI_ROLE, role_password

        origin = role_password(BI_ROLE, settings.home).origin.split(":", 1)
        where = f"${origin[1]}" if origin[0] == "env" else origin[1]
        print(f"[e2a] BI connection (read-only, marts and actions): {bi_url(settings, tcp)}  "
              f"(password: {where}; `e2a db url --bi --reveal` prints it whole)")
    cmd = [
        str(Path(sys.executable).parent / "dagster"), "dev",
        "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port),
    ]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=os.environ.copy())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130
    finally:
        stop.set()


def _seed_keys():
    graph = _load_defs().resolve_asset_graph()
    return [key for key in graph.get_all_asset_keys() if graph.get(key).group_name == "reference"]


# ------------------------------------------------------------------------------------------------------------------
# e2a db / dlq / simulate


def cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "url" and (args.bi or args.tenant):
        info = _prepare(settings)
        if settings.database_url is None:
            info = EmbeddedServer(settings.home).tcp_info() or info
        print(bi_url(settings, info, reveal=args.reveal, tenant=args.tenant))
        return 0
    if args.action == "url":
        if settings.database_url:
            print(settings.database_url if args.reveal else redact(settings.database_url))
            return 0
        server = EmbeddedServer(settings.home)
        tcp = server.tcp_info()
        if tcp is None:
            print(f"the embedded database ({server.pgdata}) is not running; start it with `e2a db start`",
                  file=sys.stderr)
            return 1
        print(tcp.url())
        return 0
    if settings.database_url:
        print("E2A_DATABASE_URL is set: E²A does not manage that server", file=sys.stderr)
        return 1
    server = EmbeddedServer(settings.home)
    if args.action == "start":
        _prepare(settings)
        print(f"embedded PostgreSQL running in {server.pgdata}: {server.tcp_info().url()}")
        return 0
    if args.action == "stop":
        stopped = server.stop()
        print("stopped" if stopped else "not running")
        return 0
    raise AssertionError(args.action)


def cmd_dlq(args: argparse.Namespace) -> int:
    settings = load_settings()
    info = _prepare(settings)
    engine = make_engine(info)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                """
                select rejected_id as id, source, location, error_code, left(error_message, 90) as message,
                       attempts, status, to_char(first_seen_at, 'YYYY-MM-DD HH24:MI') as first_seen
                from ops.rejected_records
                where %(status)s = 'all' or status = %(status)s
                order by rejected_id
                limit %(limit)s
                """,
                {"status": args.status, "limit": args.limit},
            ).mappings().all()
    finally:
        engine.dispose()
    print(text_table([dict(r) for r in rows]))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.reference import Reference
    from e2a_dagster.lib.simulator import simulate_history

    settings = load_settings()
    settings.ensure_dirs()
    end = None
    if args.start:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            start = start.astimezone()
        end = start + timedelta(days=args.days)
    summary = simulate_history(
        Reference.load(), settings.events_dir, orders=args.orders, days=args.days, seed=args.seed, end=end
    )
    print(text_table([{"figure": k, "value": v} for k, v in summary.items()]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2a", description="E²A: SLA radar + invoice guard for 3PL warehouses")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="start the database, the demo feeds and the Dagster UI")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--no-demo", action="store_true", help="no simulated history or live feed")
    dev.add_argument("--demo-orders", type=int, default=300)
    dev.set_defaults(func=cmd_dev)

    run = sub.add_parser("run", help="one in-process pass: ingest what is pending, build every model")
    run.add_argument("--as-of", help="evaluate as of this instant (ISO-8601 with offset); default now")
    run.set_defaults(func=cmd_run)

    db = sub.add_parser("db", help="the database")
    db.add_argument("action", choices=["url", "start", "stop"])
    db.add_argument("--reveal", action="store_true", help="print the password as is")
    db.add_argument("--bi", action="store_true", help="the read-only BI role's URL (e2a_bi)")
    db.add_argument("--tenant", help="the URL of a tenant's BI role (e2a_bi_<tenant>, row-level security)")
    db.set_defaults(func=cmd_db)

    dlq = sub.add_parser("dlq", help="rejected records (dead-letter queue)")
    dlq_sub = dlq.add_subparsers(dest="action", required=True)
    dlq_list = dlq_sub.add_parser("list", help="list rejected records")
    dlq_list.add_argument("--status", default="open", choices=["open", "replayed", "discarded", "failed", "all"])
    dlq_list.add_argument("--limit", type=int, default=50)
    dlq_list.set_defaults(func=cmd_dlq)

    sim = sub.add_parser("simulate", help="write a realistic order history into the landing zone")
    sim.add_argument("--orders", type=int, default=1000)
    sim.add_argument("--days", type=int, default=30)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--start", help="first day of the history (default: the history ends now)")
    sim.add_argument("--anomalies", type=float, default=0.0, help="rate of injected anomalies (0–1)")
    sim.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DatabaseError as exc:
        print(f"e2a: database error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
