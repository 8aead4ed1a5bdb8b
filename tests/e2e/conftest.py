"""The ``e2a`` command line as a user runs it (subprocesses), on a database of its own: one simulated history
and one live ``e2a run`` over it for the whole session. The CLI and backtest modules read it and add runs of
their own (a backtest, a second run with a failing check); none of them rebuilds it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import cli_environment, e2a, fresh_database
from tests.hostile_inputs import Corpus, hostile_landing

CLI_DB = "e2a_cli_test"
# The live system's now: March 2026 is complete and invoiced (the simulator dates a month's invoice on the 1st
# of the next), so a live run reconciles a closed period and a backtest a day earlier sees it closed too.
NOW = "2026-04-03T12:00:00+00:00"
# 90 orders over the 34 days before now (from 2026-02-28), all through the landing
# zone (no Shopify store here).
SIMULATION = ("--orders", "90", "--days", "34", "--seed", "5", "--no-shopify")


@dataclass(frozen=True)
class SimulatedHome:
    env: dict[str, str]
    home: Path
    url: str
    simulate: subprocess.CompletedProcess
    run: subprocess.CompletedProcess
    events: Path
    hostile: Corpus


@pytest.fixture(scope="session")
def simulated_home(pg_info, tmp_path_factory) -> SimulatedHome:
    """What a user does first: simulate a history, drop bad files beside it (a file missing a field; a landing
    zone as a careless feed fills it: NUL bytes, bad UTF-8, BOMs, misspelled headers, binary files), run once."""
    home = tmp_path_factory.mktemp("cli-home")
    url = fresh_database(pg_info, CLI_DB)
    # The daily billing partitions start with the history: a live run covers ~60 days, not ~460.
    env = cli_environment(home, url, E2A_NOW=NOW, E2A_BILLING_START="2026-02-01")
    sim = e2a(env, "simulate", *SIMULATION)
    assert sim.returncode == 0, sim.stderr
    landing = home / "landing"
    (landing / "events" / "bad.jsonl").write_text('{"event_id": "x"}\n')
    hostile = hostile_landing("HCLI", landing / "events", landing / "billing", scale=0.1, huge_line_mb=2)
    run = e2a(env, "run")
    return SimulatedHome(env, home, url, sim, run, landing / "events", hostile)
