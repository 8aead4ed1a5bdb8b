"""Every asset key (with its group), asset check, job, schedule and sensor of the real code location, compared
with a checked-in text snapshot (sorted, one per line), so a rename is a visible diff in review: BI tools, the
sensors' run requests, docs and dashboards rely on these names.

After an intended change, rewrite the snapshot and review the diff:

    E2A_UPDATE_SNAPSHOT=1 scripts/test tests/unit/test_definitions_snapshot.py
    git diff tests/unit/snapshots/definitions.txt
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def _targets(sensor: dg.SensorDefinition) -> str:
    jobs = sorted({target.job_name for target in sensor.targets})
    return ", ".join(jobs) if jobs else "(no job)"


def describe(definitions: dg.Definitions) -> list[str]:
    graph = definitions.resolve_asset_graph()
    repository = definitions.get_repository_def()
    lines = [f"asset {key.to_user_string()} [{graph.get(key).group_name}]" for key in graph.get_all_asset_keys()]
    lines += [f"check {key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys]
    lines += [f"job {job.name}" for job in repository.get_all_jobs() if not job.name.startswith("__")]
    lines += [
        f"schedule {s.name} ({s.cron_schedule}, {s.execution_timezone or 'UTC'}) -> {s.job_name}"
        for s in repository.schedule_defs
    ]
    lines += [f"sensor {s.name} -> {_targets(s)}" for s in repository.sensor_defs]
    return sorted(lines)


def test_definitions_match_the_snapshot(definitions):
    current = describe(definitions)
    if os.environ.get("E2A_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text("\n".join(current) + "\n", encoding="utf-8")
    expected = SNAPSHOT.read_text(encoding="utf-8").splitlines()
    missing = sorted(set(expected) - set(current))
    added = sorted(set(current) - set(expected))
    assert (missing, added) == ([], []), (
        "the code location changed its names (E2A_UPDATE_SNAPSHOT=1 rewrites the snapshot, see the module doc)"
    )
    assert current == expected  # no duplicate lines either


def test_groups_are_domains_not_layers(definitions):
    graph = definitions.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {"ingestion", "reference", "operations", "finance", "kpis", "explanations", "actions"}
    group = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert group["staging/stg_landing__order_events"] == "ingestion"
    assert group["staging/stg_calendar__warehouse_days"] == "reference"
    assert group["intermediate/int_order_stages_scheduled"] == "operations"
    assert group["intermediate/int_billable_activities_priced"] == "finance"
