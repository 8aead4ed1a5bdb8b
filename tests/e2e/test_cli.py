"""The ``e2a`` command line, run as a user would (subprocesses), on the session's simulated home
(tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from e2a_dagster.lib.core.settings import PROJECT_ROOT
from tests.helpers import e2a
from tests.hostile_inputs import DUPLICATE, LOADED


@pytest.fixture(scope="module")
def cli_env(simulated_home):
    return simulated_home.env


@pytest.fixture(scope="module")
def simulated_run(simulated_home):
    return simulated_home.simulate, simulated_home.run, simulated_home.events, simulated_home.hostile


def _figures(stdout: str) -> dict[str, str]:
    return dict(line.rsplit(None, 1) for line in stdout.splitlines() if line.strip() and not line.startswith("-"))


def test_simulate_run_and_dlq(cli_env, simulated_run):
    sim, run, events, hostile = simulated_run
    rejected = [e for e in hostile.expected if e.outcome not in (LOADED, DUPLICATE)]
    hostile_orders = {
        json.loads(e.data)["order_id"] for e in hostile.expected if e.outcome == LOADED and e.file.endswith(".jsonl")
    } | {e.data.decode().split(",")[4] for e in hostile.expected if e.outcome == LOADED and "-excel.csv" in e.file}
    assert "orders" in sim.stdout and "90" in sim.stdout
    assert run.returncode == 0, run.stdout + run.stderr  # bad data never fails the run
    lines = _figures(run.stdout)
    assert int(lines["records rejected (this run)"]) == 1 + len(rejected)
    assert int(lines["events loaded (this run)"]) > 100
    landing_orders = {
        json.loads(line)["order_id"]
        for name in os.listdir(events)
        if name.startswith("sim-")
        for line in Path(events, name).read_text().splitlines()
    }
    assert len(landing_orders) == 90  # no Shopify store here: every simulated order came through the landing zone
    assert int(lines["orders in marts.fct_orders"]) == len(landing_orders) + len(hostile_orders)
    assert "succeeded" in run.stdout

    dlq = e2a(cli_env, "dlq", "list", "--limit", "1000")
    assert dlq.returncode == 0
    assert "bad.jsonl:1" in dlq.stdout and "missing_field" in dlq.stdout
    # the point of every message stays visible: a long one is cut after a whole clause, never mid-word
    header_line = next(line for line in dlq.stdout.splitlines() if "HCLI-misspelled.csv:2 " in line)
    assert "unknown columns ['ocurred_at']" in header_line and header_line.endswith(" …")

    with psycopg.connect(cli_env["E2A_DATABASE_URL"]) as conn:
        nul_id, nul_location = conn.execute(
            "select rejected_id, location from ops.rejected_records where error_code = 'invalid_text' "
            "and location like 'HCLI-plain.jsonl:%' order by rejected_id limit 1"
        ).fetchone()
    written = next(e for e in hostile.expected if e.location == nul_location)
    show = e2a(cli_env, "dlq", "show", str(nul_id), "999999999")
    assert show.returncode == 1 and show.stderr.strip() == "e2a: no rejected record with id 999999999"
    assert f"location:  {nul_location}" in show.stdout and "error:     invalid_text" in show.stdout
    assert written.data.decode().replace("\x00", "\\x00") in show.stdout  # the record whole, NUL escaped
    exact = e2a(cli_env, "dlq", "show", str(nul_id), "--raw", text=False)
    assert exact.stdout == written.data  # the exact bytes, NUL included

    url = e2a(cli_env, "db", "url")
    assert url.returncode == 0 and "e2a_cli_test" in url.stdout


def test_run_exits_non_zero_when_a_blocking_check_fails(cli_env, simulated_run):
    """A row that slipped past validation (written straight into raw) fails the blocking GX check on
    raw.order_events, which keeps the models from building on it: the run says so and exits 1. It is the
    second run over the same landing zone: no file is loaded twice."""
    url = cli_env["E2A_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            insert into raw.order_events (tenant_id, source, event_id, event_type, order_id, occurred_at, payload)
            values ('acme', 'oms', 'forced-1', 'order_teleported', 'FORCED-1', '2026-03-28T12:00:00Z', '{}')
            """
        )
    try:
        run = e2a(cli_env, "run")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("delete from raw.order_events where event_id = 'forced-1'")
    assert run.returncode == 1
    assert "FAILED" in run.stderr
    assert "order_events_are_well_formed" in run.stdout
    assert _figures(run.stdout)["events loaded (this run)"] == "0"


def test_run_rejects_a_naive_as_of(cli_env):
    run = e2a(cli_env, "run", "--as-of", "2026-03-01T12:00:00")
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


def test_db_url_for_bi_tools_connects_and_bad_tenant_ids_get_one_line_errors(cli_env):
    revealed = e2a(cli_env, "db", "url", "--tenant", "globex", "--reveal")
    assert revealed.returncode == 0, revealed.stderr
    url = revealed.stdout.strip()
    assert "e2a_bi_globex:" in url and "host=" not in url  # TCP, with the role's password
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_user").fetchone() == ("e2a_bi_globex",)
    redacted = e2a(cli_env, "db", "url", "--bi")
    assert redacted.returncode == 0 and ":***@" in redacted.stdout

    for args, env, message in (
        (
            ("--tenant", "Globex'; drop role postgres; --"),
            cli_env,
            'e2a: --tenant: "Globex\'; drop role postgres; --" is not a tenant id (lower-case letters, digits, '
            "'_' and '-', at most 56 characters)",
        ),
        (("--tenant", "initech"), cli_env, "e2a: --tenant: unknown tenant 'initech' (known: acme, globex)"),
        (
            ("--bi",),
            cli_env | {"E2A_BI_TENANT_ROLES": "acme, ACME!"},
            "e2a: E2A_BI_TENANT_ROLES: 'ACME!' is not a tenant id (lower-case letters, digits, '_' and '-', at most "
            "56 characters)",
        ),
    ):
        bad = e2a(env, "db", "url", *args)
        assert (bad.returncode, bad.stderr.strip(), bad.stdout) == (2, message, ""), bad.stderr
