"""How dbt nodes become Dagster assets: groups by domain, live automation (views kept apart), sources keyed by
where data lives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from e2a_dagster.defs.automation import LIVE, VIEW


def is_view(props: Mapping[str, Any]) -> bool:
    return props.get("resource_type") == "model" and props.get("config", {}).get("materialized") == "view"


def automation_for(props: Mapping[str, Any]) -> dg.AutomationCondition | None:
    """Views are (re)created when missing or changed; tables and seeds rebuild on new data or new code
    (``defs/automation.py``). Except the invoice guard's models past staging: the daily billable activity and
    the monthly pricing, expected charges and reconciliation are built by ``reconcile_invoices_job`` (02:00
    schedules, the invoice sensor, backfills), which chooses the days."""
    tags = set(props.get("tags") or []) | set(props.get("config", {}).get("tags") or [])
    fqn = props.get("fqn", [])
    in_staging = len(fqn) > 1 and fqn[1] == "staging"
    if "billable_daily" in tags or ("invoice" in tags and props.get("resource_type") == "model" and not in_staging):
        return None
    return VIEW if is_view(props) else LIVE


def group_for(props: Mapping[str, Any]) -> str:
    """Groups are domains, never layers: seeds are reference data; marts are grouped by their folder
    (``marts/<domain>``); a staging view belongs to the source it normalises (``ingestion``; the calendar's to
    ``reference``); an intermediate model to the marts it computes for (``finance`` when tagged ``invoice``,
    else ``operations``)."""
    configured = props.get("meta", {}).get("dagster", {}).get("group") or props.get("config", {}).get("meta", {}).get(
        "dagster", {}
    ).get("group")
    if configured:
        return configured
    if props.get("resource_type") == "seed":
        return "reference"
    fqn = props.get("fqn", [])
    # fqn = [project, "staging", "<source>", model] / [project, "intermediate", model] / [project, "marts", ...]
    layer = fqn[1] if len(fqn) >= 3 else None
    if layer == "marts" and len(fqn) >= 4:
        return fqn[2]
    if layer == "staging":
        return "reference" if len(fqn) >= 4 and fqn[2] == "calendar" else "ingestion"
    if layer == "intermediate":
        return "finance" if "invoice" in props.get("tags", []) else "operations"
    return "transform"


class E2ADbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=False))

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props.get("resource_type") == "source":
            return spec
        spec = spec.replace_attributes(group_name=group_for(props), automation_condition=automation_for(props))
        # Views hold no data of their own: automation looks through them (defs/automation.py VIEWS).
        return spec.merge_attributes(kinds={"view"}) if is_view(props) else spec
