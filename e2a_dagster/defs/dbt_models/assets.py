"""The dbt project as Dagster assets; dbt tests become asset checks."""

import json
import os
from datetime import datetime

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from e2a_dagster.defs.dbt_models.translator import E2ADbtTranslator
from e2a_dagster.defs.resources import Database, dbt_project
from e2a_dagster.lib.invoice_metrics import METRICS_BY_MODEL as INVOICE_METRICS
from e2a_dagster.lib.sla_metrics import METRICS_BY_MODEL


class DbtBuildConfig(dg.Config):
    as_of: str | None = None
    """Evaluate as of this instant (ISO-8601 with offset); empty = now. Only events at or before it count."""


def as_of_var(as_of: str) -> str:
    """The ``as_of`` dbt var of an ISO-8601 instant, which must carry its UTC offset."""
    parsed = datetime.fromisoformat(as_of)
    if parsed.tzinfo is None:
        raise ValueError(f"as_of must carry a UTC offset: {as_of!r}")
    return parsed.isoformat()


def dbt_build_args(as_of: str | None) -> list[str]:
    """The dbt CLI arguments of a build (pure, unit-tested)."""
    args = ["build"]
    if as_of:
        args += ["--vars", json.dumps({"as_of": as_of_var(as_of)})]
    return args


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # The daily-partitioned billable activity is its own asset (defs/invoicing/billable_activity.py).
    exclude="tag:billable_daily",
    dagster_dbt_translator=E2ADbtTranslator(),
)
def e2a_dbt_models(context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, database: Database):
    database.export_dbt_env()
    # A subset build (seeds only, SLA models only) runs the tests whose parents are all built or upstream, not
    # tests on models downstream that may not exist yet. dagster-dbt overrides this when checks are selected.
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    for event in dbt.cli(dbt_build_args(config.as_of), context=context).stream():
        yield with_model_metrics(context, event, database)


def with_model_metrics(context: dg.AssetExecutionContext, event, database: Database):
    """Add the SLA figures (counts by status and severity) and the invoice money totals to the marts'
    materializations."""
    if not isinstance(event, dg.Output):
        return event
    key = context.asset_key_for_output(event.output_name)
    metrics = METRICS_BY_MODEL.get(key.path[-1]) or INVOICE_METRICS.get(key.path[-1])
    if metrics is None:
        return event
    return event.with_metadata({**event.metadata, **metrics(database.engine)})
