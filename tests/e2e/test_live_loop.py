"""The live loop as the daemon runs it, against a real Dagster instance and a database of its own: the sensors'
ticks and the automation sensor's tick (the daemon's own evaluation context) request runs, which execute for
real; nothing sleeps. A burst of files is one ingestion run and one downstream rebuild; every asset reaches a
first materialization on its own; a cancelled run's files are asked for again."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
from dagster._core.definitions.automation_tick_evaluation_context import AutomationTickEvaluationContext

from e2a_dagster.defs.automation import SLA_BUILD_TAGS
from e2a_dagster.lib.core.database import make_engine
from tests.helpers import write_jsonl

NOW = "2026-03-02T15:00:00+00:00"  # Monday 10:00 in New York
LIVE_DB = "e2a_live_loop"
SEC = 1_000_000_000


class Automation:
    """The automation sensor's ticks, evaluated by the daemon's own ``AutomationTickEvaluationContext``."""

    def __init__(self, definitions: dg.Definitions, instance: dg.DagsterInstance):
        self.definitions = definitions
        self.instance = instance
        self.sensor = definitions.resolve_sensor_def("automation_sensor")
        self.cursor = AssetDaemonCursor.empty()

    def tick(self) -> list[dg.RunRequest]:
        context = AutomationTickEvaluationContext(
            evaluation_id=self.cursor.evaluation_id + 1,
            instance=self.instance,
            asset_graph=self.definitions.resolve_asset_graph(),
            cursor=self.cursor,
            materialize_run_tags=self.sensor.run_tags,
            observe_run_tags={},
            auto_observe_asset_keys=set(),
            asset_selection=self.sensor.asset_selection,
            logger=logging.getLogger("test_live_loop"),
            emit_backfills=False,
        )
        requests, self.cursor, _ = context.evaluate()
        return list(requests)


def execute(definitions: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, *, skip_checks=()):
    """Run what ``request`` asks for, as the queue would launch it (its assets, its checks, its tags), less the
    checks on assets under the key prefixes ``skip_checks``."""
    job = definitions.resolve_implicit_global_asset_job_def()
    checks = set(request.asset_check_keys) if request.asset_check_keys is not None else None
    if skip_checks:
        checks = {c for c in checks or () if c.asset_key.path[0] not in skip_checks}
    subset = job.get_subset(asset_selection=set(request.asset_selection), asset_check_selection=checks)
    result = subset.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def dbt_steps(definitions: dg.Definitions, request: dg.RunRequest) -> list[str]:
    """The dbt commands a run of ``request`` issues: one per dbt step of its plan."""
    job = definitions.resolve_implicit_global_asset_job_def()
    subset = job.get_subset(asset_selection=set(request.asset_selection))
    return [n.name for n in subset.graph.nodes if n.name.startswith("e2a_dbt_models")]


def sensor_context(definitions: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """A sensor's context as the daemon gives it: with the repository (requests name their job's assets)."""
    return dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=definitions.get_repository_def())


def evaluate_schedule(definitions: dg.Definitions, instance: dg.DagsterInstance):
    from e2a_dagster.defs.resources import Database

    schedule = definitions.resolve_schedule_def("sla_refresh_schedule")
    with dg.build_schedule_context(
        instance=instance, resources={"database": Database()}, repository_def=definitions.get_repository_def()
    ) as context:
        return schedule.evaluate_tick(context)


def paid_order(order_id: str) -> list[dict]:
    common = {"tenant_id": "acme", "source": "oms", "order_id": order_id}
    return [
        {
            **common,
            "event_id": f"{order_id}-c",
            "event_type": "order_created",
            "occurred_at": "2026-03-02T09:00:00-05:00",
        },
        {**common, "event_id": f"{order_id}-p", "event_type": "order_paid", "occurred_at": "2026-03-02T09:05:00-05:00"},
    ]


@pytest.fixture
def live_db(pg_info, dbt_manifest):
    """A database of its own (the bootstrap builds every model in it), and the environment pointing at it."""
    with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{LIVE_DB}" with (force)')
        conn.execute(f'create database "{LIVE_DB}"')
    info = pg_info.with_dbname(LIVE_DB)
    patch = pytest.MonkeyPatch()
    patch.setenv("E2A_DATABASE_URL", info.url())
    patch.setenv("E2A_NOW", NOW)
    for key, value in info.dbt_env().items():  # restored at teardown, whatever the resources set meanwhile
        patch.setenv(key, value)
    engine = make_engine(info)
    yield engine
    engine.dispose()
    patch.undo()


def test_a_burst_of_files_is_one_run_that_ingests_and_rebuilds(live_db, definitions, tmp_path, monkeypatch):
    from sensors.landing_events import landing_events_sensor
    from sensors.landing_files import job_assets

    events = tmp_path / "events"
    events.mkdir()
    monkeypatch.setenv("E2A_LANDING_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        automation = Automation(definitions, instance)

        # From an empty home: one run builds every asset that can be built before any data (seeds, calendar,
        # views, every model, narratives, lint, KPIs, report), with their checks.
        (bootstrap,) = automation.tick()
        keys = {k.to_user_string() for k in bootstrap.asset_selection}
        assert {
            "reference/tenants",
            "reference/warehouse_calendar",
            "intermediate/int_shopify_order_events_versioned",
            "intermediate/int_orders_milestoned",
            "marts/fct_sla_evaluations",
            "marts/agg_sla_exceptions_daily",
            "actions/exception_narratives",
            "ops/policy_lint",
        } <= keys
        assert not any(k.startswith("raw/") for k in keys)  # the sensors' job
        checks = {c.name for c in bootstrap.asset_check_keys or []}
        assert {"fct_sla_evaluations_reason_code_exists", "sla_evaluations_are_consistent"} <= checks
        # Files landing now would be loaded alone: what the wave reads does not exist yet (automation builds it).
        events_key = dg.AssetKey(["raw", "order_events"])
        fresh = sensor_context(definitions, instance, None)
        assert job_assets(fresh, "ingest_landing_events_job", events_key) == [events_key]
        # Run here without the 80-odd checks of the reference data (half of a first build; tests/integration).
        execute(definitions, instance, bootstrap, skip_checks={"reference"})
        # With the marts' blocking checks passed, the actions on SLA figures follow; then nothing more is asked.
        (actions,) = automation.tick()
        assert {k.to_user_string() for k in actions.asset_selection} == {"actions/notifications", "reports/sla_radar"}
        execute(definitions, instance, actions)
        assert automation.tick() == []

        # 50 files land at once: one ingestion run for all of them.
        for i in range(50):
            path = write_jsonl(events / f"burst-{i:02d}.jsonl", paid_order(f"LIVE-{i:02d}"))
            os.utime(path, ns=(1_000 * SEC + i, 1_000 * SEC + i))  # settled
        tick = landing_events_sensor(sensor_context(definitions, instance, None))
        (request,) = tick.run_requests
        assert request.run_key.startswith("events:burst-00.jsonl..burst-49.jsonl:")

        # Queued, it covers what lands meanwhile: the next tick asks for nothing more.
        job = definitions.resolve_job_def("ingest_landing_events_job")
        queued = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.NOT_STARTED, tags={**request.tags, "dagster/run_key": request.run_key}
        )
        path = write_jsonl(events / "burst-50.jsonl", paid_order("LIVE-50"))
        os.utime(path, ns=(2_000 * SEC, 2_000 * SEC))
        waiting = landing_events_sensor(sensor_context(definitions, instance, tick.cursor))
        assert waiting.run_requests == [] and "will take it" in waiting.skip_reason.skip_message
        # `e2a dev` stops and cancels the queued run: its files are asked for again, once.
        instance.report_run_canceled(queued)
        retry = landing_events_sensor(sensor_context(definitions, instance, waiting.cursor))
        (again,) = retry.run_requests
        assert again.run_key == f"events:retry-after-cancel:{queued.run_id}"
        # The run is the wave: it loads the files, then rebuilds everything downstream of the new events in one
        # dbt command (not the views, the seeds, the calendar or the invoice guard's models).
        keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
        assert {
            "raw/order_events",
            "intermediate/int_orders_milestoned",
            "marts/fct_sla_evaluations",
            "actions/exception_narratives",
            "actions/notifications",  # the marts' blocking checks gate it within the run
        } <= keys
        assert not any(k.startswith(("reference/", "staging/", "reports/")) for k in keys)
        assert not {"marts/fct_sla_exceptions", "marts/fct_invoice_reconciliation"} & keys  # a view; invoice guard
        assert len([n for n in job.graph.nodes if n.name.startswith("e2a_dbt_models")]) == 1
        assert set(request.asset_selection) == set(again.asset_selection) == job.asset_layer.selected_asset_keys
        ingested = job.execute_in_process(
            instance=instance,
            asset_selection=again.asset_selection,
            tags={**again.tags, "dagster/run_key": again.run_key},
        )
        assert ingested.success
        # The narratives come after the models in the run, so a wave's new exceptions get theirs in that wave.
        started = [e.step_key for e in ingested.all_events if e.event_type_value == "STEP_START"]
        assert started.index("actions__exception_narratives") > started.index("e2a_dbt_models")
        (loaded,) = ingested.asset_materializations_for_node("raw__order_events")
        assert loaded.metadata["files"].value == 51 and loaded.metadata["events_loaded"].value == 102
        idle = landing_events_sensor(sensor_context(definitions, instance, retry.cursor))
        assert isinstance(idle, dg.SkipReason) and "no new files" in idle.skip_message
        # Built with their root: automation asks for nothing more until new data.
        assert automation.tick() == []

        # The refresh asks for nothing while the wave's statuses are fresh: the wave evaluated every running
        # stage when it started, so a refresh now would only hold the next wave up in the queue.
        fresh = evaluate_schedule(definitions, instance)
        assert fresh.run_requests == [] and ingested.run_id[:8] in fresh.skip_message
        # As if this wave and the bootstrap's builds had run more than four minutes ago:
        for run in instance.get_runs(filters=dg.RunsFilter(tags=dict(SLA_BUILD_TAGS))):
            instance.delete_run(run.run_id)
        # Then it names its assets (so automation knows they were rebuilt together and does not rebuild them
        # again), and asks for nothing while an SLA build is still waiting to start.
        schedule = definitions.resolve_schedule_def("sla_refresh_schedule")
        (refresh,) = evaluate_schedule(definitions, instance).run_requests
        assert dg.AssetKey(["marts", "fct_sla_evaluations"]) in refresh.asset_selection
        refresh_job = definitions.resolve_job_def(schedule.job_name)
        instance.create_run_for_job(refresh_job, status=dg.DagsterRunStatus.NOT_STARTED, tags=refresh_job.tags)
        waiting = evaluate_schedule(definitions, instance)
        assert waiting.run_requests == [] and "queued already" in waiting.skip_message

    # Hand-computed: paid Monday 09:05 New York, pick due 120 business minutes later (11:05), on track at 10:00.
    with live_db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select order_id, status, due_at from marts.fct_sla_evaluations "
                "where order_id like 'LIVE-%' and stage = 'pick' order by order_id"
            )
        ).all()
    assert len(rows) == 51
    assert {(r.status, r.due_at) for r in rows} == {("on_track", datetime(2026, 3, 2, 16, 5, tzinfo=UTC))}


def test_a_live_refresh_after_a_pinned_build_sees_a_shopify_version_ingested_since(
    engine, pg_info, dbt_seeded, definitions, monkeypatch, uid
):
    """The Shopify staging view holds no instant: the 5-minute refresh (which does not rebuild views) after a
    build pinned in the past reads the newest order version."""
    from e2a_dagster.defs.resources import Database
    from e2a_dagster.defs.sla.assets import warehouse_calendar
    from e2a_dagster.lib.core.dbt import run_dbt
    from e2a_dagster.lib.ingestion.shopify import load_documents

    monkeypatch.setenv("E2A_NOW", "2026-03-07T00:00:00+00:00")
    shop = f"https://live-{uid}.myshopify.example"
    order_id = str(7_000_000_000 + int(uid[:7], 16))
    order = {
        "id": int(order_id),
        "name": f"#L{uid}",
        "created_at": "2026-03-04T09:00:00-05:00",
        "processed_at": "2026-03-04T09:05:00-05:00",
        "financial_status": "paid",
        "line_items": [{"id": 1, "quantity": 2}],
    }

    def load(version: dict) -> None:
        text = json.dumps({"order": {**order, **version}})
        result = load_documents(engine, [(f"{shop}/orders/{order_id}.json", text)], shop=shop, tenant_id="acme")
        assert (result.inserted, result.rejected) == (1, 0)

    def fct_order():
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "select paid_at, label_printed_at, carrier, tracking_number from marts.fct_orders "
                    "where tenant_id = 'acme' and order_id = :o"
                ),
                {"o": order_id},
            ).one()

    load({"updated_at": "2026-03-04T10:00:00-05:00", "fulfillments": []})
    assert dg.materialize([warehouse_calendar], resources={"database": Database()}).success
    # A build pinned in the past, views included (what a backtest used to leave behind).
    pinned = {"as_of": "2026-03-05T00:00:00+00:00"}
    select = "stg_landing__order_events stg_shopify__orders int_shopify_order_events_versioned tag:sla"
    run_dbt(["run", "--select", select, "--vars", json.dumps(pinned)], pg_info)
    assert fct_order() == (datetime(2026, 3, 4, 14, 5, tzinfo=UTC), None, None, None)

    # A version of 2026-03-06 12:00 New York adds a fulfillment with a tracking number: the label.
    fulfillment = {
        "id": 55,
        "status": "success",
        "created_at": "2026-03-06T11:00:00-05:00",
        "updated_at": "2026-03-06T11:00:00-05:00",
        "tracking_company": "UPS",
        "tracking_number": "1ZLIVE",
    }
    load({"updated_at": "2026-03-06T12:00:00-05:00", "fulfillment_status": "fulfilled", "fulfillments": [fulfillment]})
    with dg.instance_for_test() as instance:
        refresh = definitions.resolve_job_def("refresh_sla_job").execute_in_process(instance=instance)
    assert refresh.success
    assert fct_order() == (
        datetime(2026, 3, 4, 14, 5, tzinfo=UTC),
        datetime(2026, 3, 6, 16, 0, tzinfo=UTC),
        "ups",
        "1ZLIVE",
    )


def test_e2a_dev_stops_on_ctrl_c_within_10_s_and_leaves_no_run_queued(pg_info, tmp_path):
    """`e2a dev --no-demo` on a home and a database of its own: once the UI answers, SIGINT stops webserver,
    daemon, code server and any run within 10 s, and no run is left queued or in progress."""
    import psutil

    from e2a_dagster.lib.core import dev_server
    from e2a_dagster.lib.core.settings import PROJECT_ROOT

    name = "e2a_dev_stop"
    with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2A_", "DAGSTER_"))}
    env.update(
        E2A_HOME=str(tmp_path),
        DAGSTER_HOME=str(tmp_path / "dagster"),
        E2A_DATABASE_URL=pg_info.with_dbname(name).url(),
        E2A_NOW=NOW,
    )
    out = tmp_path / "e2a-dev.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            [str(PROJECT_ROOT / ".venv" / "bin" / "e2a"), "dev", "--no-demo", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        # Poll, within a deadline, until e2a says where the UI is (it does once the UI lists the code location).
        deadline = time.monotonic() + 300
        while "[e2a] Dagster UI:" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "no UI within 5 minutes"
            time.sleep(0.2)
        assert dev_server.is_ready(f"http://127.0.0.1:{port}")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("dagster" in " ".join(c.cmdline()) for c in children)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    output = out.read_text()
    assert proc.returncode == 0, output
    lines = [line for line in output.splitlines() if line.startswith("[e2a]")]
    # the addresses are the last lines before the stop (the BI one when the database listens on TCP)
    before_stop = lines[: lines.index("[e2a] stopping Dagster ...")]
    if "BI connection" in before_stop[-1]:
        before_stop.pop()
    assert before_stop[-1] == f"[e2a] Dagster UI: http://127.0.0.1:{port}"
    _, alive = psutil.wait_procs(children, timeout=2)
    assert alive == []
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert dev_server.unfinished_runs(instance) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
