"""Onboarding a client from the operator's own reference folder (issue 11), as a user does it: ``e2a init``, a
third tenant in a new country added to the folder, ``e2a lint``, order events carrying their own promises in the
landing zone, one ``e2a run`` on a database of its own. Nothing under the repository changes.

Tenant nippon (JPY, Asia/Tokyo = UTC+9, no DST), warehouse TYO1: Monday–Saturday 09:00–18:00, cutoff 15:00,
Japan's national holidays (Monday 2026-11-23, Labour Thanksgiving Day, is closed). Now = Wednesday 2026-11-25
12:00 JST. The default policies apply (ship: cutoff rule, at risk 120 minutes before due).

  N1 paid Fri 11-20 10:05, promises ship by the date 2026-11-21 (Saturday: 24:00 JST = 11-21 15:00Z) and deliver
     by 2026-11-24 (11-24 15:00Z); handed Sat 11-21 17:00 JST (08:00Z), delivered Tue 11-24 13:00 JST (04:00Z):
     ship met, deliver met, both due_source promise
  N2 created Fri 11-20 with ship by 2026-11-21T12:00+09:00, re-promised on order_paid (later) to 2026-11-24
     (11-24 15:00Z); handed Tue 11-24 16:00 JST: met under the re-promise (late under the first one)
  N3 paid Sat 11-21 09:35, ship by 2026-11-21T14:00+09:00 (05:00Z); handed 16:00 JST (07:00Z): late, 120 minutes
  N4 paid Sat 11-21 10:00, no promise: the policy's cutoff rule, Saturday is a working day at TYO1: due at its
     18:00 JST close (09:00Z); never handed over: overdue, due_source policy
  N5 paid Sat 11-21 16:00, after the cutoff, no promise: Sunday is closed, Monday a national holiday, so due
     Tuesday 11-24 18:00 JST (09:00Z); overdue
  N2 and N3 promise no delivery: ground is due 24:00 JST of the 5th carrier business day (Monday–Friday, the
     holiday skipped) after pickup: N3 (Sat 11-21) Mon 11-30, N2 (Tue 11-24) Tue 12-01; both on track
  Two more records promise "next tuesday" and a time without an offset: both rejected to the DLQ with codes.
Compliance (ship, TYO1; late_count counts late and overdue): 11-21 3 due, 1 met, 2 late of which 1 overdue
(33.33 %); 11-24 2 due, 1 met, 1 late, overdue (50.00 %).
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from decimal import Decimal

import psycopg
import pytest

from e2a_dagster.lib.core.settings import PROJECT_ROOT
from tests.helpers import cli_environment, e2a, fresh_database
from tests.unit.test_reference_dir import japan_folder

NOW = "2026-11-25T12:00:00+09:00"
JST = "+09:00"


def _event(order: str, kind: str, when: str, source: str = "oms", **extra) -> dict:
    return {
        "event_id": f"{order}-{kind}",
        "tenant_id": "nippon",
        "source": source,
        "event_type": kind,
        "order_id": order,
        "occurred_at": f"{when}{JST}",
        **extra,
    }


EVENTS = [
    _event(
        "N1", "order_created", "2026-11-20T10:00:00", promised_ship_by="2026-11-21", promised_deliver_by="2026-11-24"
    ),
    _event("N1", "order_paid", "2026-11-20T10:05:00"),
    _event("N1", "carrier_pickup", "2026-11-21T17:00:00", "wms", warehouse_id="TYO1", carrier="ups"),
    _event("N1", "delivered", "2026-11-24T13:00:00", "carrier", carrier="ups"),
    _event("N2", "order_created", "2026-11-20T11:00:00", promised_ship_by="2026-11-21T12:00:00+09:00"),
    _event("N2", "order_paid", "2026-11-20T11:05:00", promised_ship_by="2026-11-24"),
    _event("N2", "carrier_pickup", "2026-11-24T16:00:00", "wms", warehouse_id="TYO1", carrier="ups"),
    _event("N3", "order_created", "2026-11-21T09:30:00", promised_ship_by="2026-11-21T14:00:00+09:00"),
    _event("N3", "order_paid", "2026-11-21T09:35:00"),
    _event("N3", "carrier_pickup", "2026-11-21T16:00:00", "wms", warehouse_id="TYO1", carrier="ups"),
    _event("N4", "order_paid", "2026-11-21T10:00:00"),
    _event("N5", "order_paid", "2026-11-21T16:00:00"),
    _event("N6", "order_created", "2026-11-21T10:00:00", promised_ship_by="next tuesday"),
    _event("N7", "order_created", "2026-11-21T10:00:00", promised_deliver_by="2026-11-28T12:00:00"),
]


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def onboarded(pg_info, tmp_path_factory):
    before = _git_status()
    root = tmp_path_factory.mktemp("onboarding")
    folder = japan_folder(root)  # `e2a init`'s starter folder plus the nippon rows
    home = root / "home"
    events = home / "landing" / "events"
    events.mkdir(parents=True)
    (events / "nippon-2026-11.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    url = fresh_database(pg_info, "e2a_onboarding_test")
    env = cli_environment(home, url, E2A_NOW=NOW, E2A_BILLING_START="2026-11-01", E2A_REFERENCE_DIR=str(folder))
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    lint = e2a(env, "lint")
    run = e2a(env, "run")
    return {
        "lint": lint,
        "run": run,
        "url": url,
        "before": before,
        "after": _git_status(),
        "files": files,
        "files_after": {p.name: p.read_bytes() for p in folder.iterdir()},
    }


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_the_new_tenant_lints_clean_runs_and_leaves_the_repository_untouched(onboarded):
    assert onboarded["lint"].returncode == 0, onboarded["lint"].stdout + onboarded["lint"].stderr
    assert onboarded["run"].returncode == 0, onboarded["run"].stdout + onboarded["run"].stderr
    assert onboarded["after"] == onboarded["before"]
    assert onboarded["files_after"] == onboarded["files"]  # dbt seed read the operator's files, wrote none
    assert _rows(onboarded["url"], "select currency, time_zone from reference.tenants where tenant_id = 'nippon'") == [
        ("JPY", "Asia/Tokyo")
    ]


def test_promises_set_the_due_times_and_the_policy_the_rest(onboarded):
    got = {
        (order, stage): (due_at, str(due_local_date), status, source, minutes_late)
        for order, stage, due_at, due_local_date, status, source, minutes_late in _rows(
            onboarded["url"],
            "select order_id, stage, due_at, due_local_date, status, due_source, minutes_late "
            "from marts.fct_sla_evaluations where tenant_id = 'nippon' and stage in ('ship', 'deliver')",
        )
    }
    utc = datetime.fromisoformat
    assert got == {
        ("N1", "ship"): (utc("2026-11-21T15:00:00+00:00"), "2026-11-21", "met", "promise", None),
        ("N1", "deliver"): (utc("2026-11-24T15:00:00+00:00"), "2026-11-24", "met", "promise", None),
        ("N2", "ship"): (utc("2026-11-24T15:00:00+00:00"), "2026-11-24", "met", "promise", None),
        # no deliver promise: ground = 5 carrier business days (Monday–Friday, Japan's holidays) after pickup
        ("N2", "deliver"): (utc("2026-12-01T15:00:00+00:00"), "2026-12-01", "on_track", "policy", None),
        ("N3", "deliver"): (utc("2026-11-30T15:00:00+00:00"), "2026-11-30", "on_track", "policy", None),
        ("N3", "ship"): (utc("2026-11-21T05:00:00+00:00"), "2026-11-21", "late", "promise", Decimal("120.00")),
        ("N4", "ship"): (utc("2026-11-21T09:00:00+00:00"), "2026-11-21", "overdue", "policy", Decimal("5400.00")),
        ("N5", "ship"): (utc("2026-11-24T09:00:00+00:00"), "2026-11-24", "overdue", "policy", Decimal("1080.00")),
    }


def test_bad_promises_go_to_the_dlq_with_their_codes(onboarded):
    rejected = _rows(
        onboarded["url"],
        "select location, error_code, error_message from ops.rejected_records "
        "where location like 'nippon-2026-11.jsonl:%' order by location",
    )
    assert [(loc, code) for loc, code, _ in rejected] == [
        ("nippon-2026-11.jsonl:13", "invalid_timestamp"),
        ("nippon-2026-11.jsonl:14", "naive_timestamp"),
    ]
    assert rejected[0][2].startswith("promised_ship_by:") and rejected[1][2].startswith("promised_deliver_by:")


def test_compliance_kpis_for_the_new_tenant(onboarded):
    got = _rows(
        onboarded["url"],
        "select stage, due_local_date::text, due_count, met_count, late_count, overdue_count, compliance_pct "
        "from marts.agg_sla_compliance_daily where tenant_id = 'nippon' and warehouse_id = 'TYO1' "
        "and stage in ('ship', 'deliver') order by stage, due_local_date",
    )
    assert got == [
        ("deliver", "2026-11-24", 1, 1, 0, 0, Decimal("100.00")),
        ("deliver", "2026-11-30", 0, 0, 0, 0, None),  # not due yet
        ("deliver", "2026-12-01", 0, 0, 0, 0, None),
        ("ship", "2026-11-21", 3, 1, 2, 1, Decimal("33.33")),  # late_count counts the overdue too
        ("ship", "2026-11-24", 2, 1, 1, 1, Decimal("50.00")),
    ]
