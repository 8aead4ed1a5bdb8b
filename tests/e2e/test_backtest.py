"""Backtests are side-effect free (issue 16): ``e2a run --as-of`` after a live ``e2a run``, run as a user runs
them (subprocesses), on the session's simulated home (tests/e2e/conftest.py). Every live table (raw, staging
views, intermediate, marts, actions, ops, reference), the reports and the Dagster instance are byte-for-byte what
they were."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.helpers import e2a

AS_OF = "2026-04-02T12:00:00+00:00"  # the backtest: a day before the live system's now (conftest.NOW)
LIVE_SCHEMAS = ("raw", "staging", "intermediate", "marts", "actions", "ops", "reference")


@pytest.fixture(scope="module")
def live(simulated_home):
    assert simulated_home.run.returncode == 0, simulated_home.run.stdout + simulated_home.run.stderr
    return {"env": simulated_home.env, "home": simulated_home.home, "url": simulated_home.url}


def table_digests(url: str) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the sorted row texts) of every table and view in the live schemas."""
    out = {}
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "select table_schema, table_name from information_schema.tables where table_schema = any(%s) order by 1, 2",
            (list(LIVE_SCHEMAS),),
        ).fetchall()
        for schema, name in relations:
            rows, digest = conn.execute(
                f"select count(*), md5(coalesce(string_agg(md5(t::text), '' order by md5(t::text)), '')) "
                f'from "{schema}"."{name}" as t'
            ).fetchone()
            out[f"{schema}.{name}"] = (rows, digest)
    return out


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_backtest_after_a_live_run_leaves_every_live_table_identical(live):
    env, home, url = live["env"], live["home"], live["url"]
    tables_before = table_digests(url)
    reports_before, dagster_before = file_digests(home / "reports"), file_digests(home / "dagster")
    assert reports_before and dagster_before  # the live run wrote a report and recorded its run
    assert tables_before["actions.invoice_adjustments"][0] > 0 and tables_before["marts.fct_orders"][0] > 0

    backtest = e2a(env, "run", "--as-of", AS_OF)
    assert backtest.returncode == 0, backtest.stdout + backtest.stderr
    assert "live state untouched" in backtest.stdout

    assert table_digests(url) == tables_before
    assert file_digests(home / "reports") == reports_before
    assert file_digests(home / "dagster") == dagster_before  # no Dagster run, no materialization

    with psycopg.connect(url) as conn:
        q = conn.execute
        as_of = datetime.fromisoformat(AS_OF)
        # the backtest saw only what had happened by its as_of
        assert q("select max(created_at) from backtest_marts.fct_orders").fetchone()[0] <= as_of
        assert q("select max(created_at) from marts.fct_orders").fetchone()[0] > as_of
        assert q("select count(distinct as_of) from backtest_marts.fct_sla_evaluations").fetchone()[0] == 1
        assert q("select min(as_of) from backtest_marts.fct_sla_evaluations").fetchone()[0] == as_of
        # March is closed and invoiced at its as_of too: reconciled, adjustments written, none approved
        statuses = q(
            "select distinct period_status from backtest_marts.fct_expected_charges where period_start = '2026-03-01'"
        ).fetchall()
        assert statuses == [("closed",)]
        findings = q(
            "select count(*) from backtest_marts.fct_invoice_reconciliation where discrepancy_type <> 'matched'"
        ).fetchone()[0]
        approvals = q(
            "select approval_status, bool_and(approval_reason like 'backtest:%'), count(*) "
            "from backtest_actions.invoice_adjustments group by 1"
        ).fetchall()
        assert findings > 0 and approvals == [("needs_review", True, findings)]
        assert (
            q("select count(*) from backtest_actions.exception_narratives where generator <> 'template'").fetchone()[0]
            == 0
        )

    listed = e2a(env, "backtest", "list")
    assert listed.returncode == 0 and "backtest" in listed.stdout and "2026-04-02T12:00:00+00:00" in listed.stdout
    assert "succeeded" in listed.stdout
    dropped = e2a(env, "backtest", "drop", "backtest")
    assert dropped.returncode == 0 and "backtest_marts" in dropped.stdout
    assert table_digests(url) == tables_before
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regnamespace('backtest_marts')").fetchone()[0] is None


def test_into_without_as_of_is_refused(live):
    run = e2a(live["env"], "run", "--into", "q1")
    assert run.returncode != 0 and "--as-of" in run.stderr
