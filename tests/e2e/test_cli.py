"""The ``e2a`` command line, run as a user would (subprocesses), on its own database of the test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from e2a_dagster.lib.settings import PROJECT_ROOT

CLI_DB = "e2a_cli_test"


def _e2a(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "e2a_dagster.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# The simulated history: 40 orders created over three days from Monday 2026-10-26 (before the session's
# pinned now, so every timeline is complete, and before any machine clock the suite runs under).
SIM = ("--orders", "40", "--days", "3", "--seed", "5", "--start", "2026-10-26T00:00:00+00:00")


@pytest.fixture(scope="module")
def cli_env(pg_info, tmp_path_factory):
    with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{CLI_DB}" with (force)')
        conn.execute(f'create database "{CLI_DB}"')
    home = tmp_path_factory.mktemp("cli-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2A_", "DAGSTER_HOME"))}
    env.update(
        {
            "E2A_HOME": str(home),
            "E2A_DATABASE_URL": pg_info.with_dbname(CLI_DB).url(),
            "E2A_NOW": os.environ["E2A_NOW"],  # the session's pinned clock
            "E2A_BILLING_START": "2026-10-01",  # the simulated month: a few dozen daily partitions, not years
        }
    )
    return env


@pytest.fixture(scope="module")
def simulated_run(cli_env):
    """What a user does first: simulate a history, drop a bad file beside it, run once."""
    sim = _e2a(cli_env, *("simulate", *SIM))
    assert sim.returncode == 0, sim.stderr
    events = os.path.join(cli_env["E2A_HOME"], "landing", "events")
    with open(os.path.join(events, "bad.jsonl"), "w") as fh:
        fh.write('{"event_id": "x"}\n')
    run = _e2a(cli_env, "run")
    return sim, run, events


def _figures(stdout: str) -> dict[str, str]:
    return dict(line.rsplit(None, 1) for line in stdout.splitlines() if line.strip() and not line.startswith("-"))


def test_simulate_run_and_dlq(cli_env, simulated_run):
    sim, run, events = simulated_run
    assert "orders" in sim.stdout and "40" in sim.stdout
    assert run.returncode == 0, run.stdout + run.stderr
    lines = _figures(run.stdout)
    assert int(lines["records rejected (this run)"]) == 1
    assert int(lines["events loaded (this run)"]) > 100
    # Some simulated orders go through the (unconfigured here) Shopify channel, not the landing zone.
    landing_orders = {
        json.loads(line)["order_id"]
        for name in os.listdir(events)
        if name.startswith("sim-")
        for line in Path(events, name).read_text().splitlines()
    }
    assert 30 <= len(landing_orders) <= 40
    assert int(lines["orders in marts.fct_orders"]) == len(landing_orders)
    assert "succeeded" in run.stdout

    dlq = _e2a(cli_env, "dlq", "list")
    assert dlq.returncode == 0
    assert "bad.jsonl:1" in dlq.stdout and "missing_field" in dlq.stdout

    url = _e2a(cli_env, "db", "url")
    assert url.returncode == 0 and CLI_DB in url.stdout


def test_run_exits_non_zero_when_a_blocking_check_fails(cli_env, simulated_run):
    """A row that slipped past validation (written straight into raw) fails the blocking GX check on
    raw.order_events, which keeps the models from building on it: the run says so and exits 1. It is the
    second run over the same landing zone: no file is loaded twice."""
    url = cli_env["E2A_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            insert into raw.order_events (tenant_id, source, event_id, event_type, order_id, occurred_at, payload)
            values ('acme', 'oms', 'forced-1', 'order_teleported', 'FORCED-1', '2026-10-28T12:00:00Z', '{}')
            """
        )
    try:
        run = _e2a(cli_env, "run")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("delete from raw.order_events where event_id = 'forced-1'")
    assert run.returncode == 1
    assert "FAILED" in run.stderr
    assert "order_events_are_well_formed" in run.stdout
    assert _figures(run.stdout)["events loaded (this run)"] == "0"


def test_run_rejects_a_naive_as_of(cli_env):
    run = _e2a(cli_env, "run", "--as-of", "2026-03-01T12:00:00")
    assert run.returncode != 0
    assert "offset" in (run.stdout + run.stderr)


def test_dg_check_defs_passes(dbt_manifest):
    """The code location loads as Dagster's own tooling loads it (`dg check defs`, run from the venv)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(bin_dir / "dg"), "check", "defs"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr
