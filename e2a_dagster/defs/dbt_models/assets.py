"""The dbt project as Dagster assets; dbt tests become asset checks."""

import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from e2a_dagster.defs.dbt_models.translator import E2ADbtTranslator
from e2a_dagster.defs.resources import Database, dbt_project
from e2a_dagster.lib.invoice_metrics import METRICS_BY_MODEL as INVOICE_METRICS
from e2a_dagster.lib.sla_metrics import METRICS_BY_MODEL


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # The daily-partitioned billable activity is its own asset (defs/invoicing/billable_activity.py).
    exclude="tag:billable_daily",
    dagster_dbt_translator=E2ADbtTranslator(),
)
def e2a_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, database: Database):
    database.export_dbt_env()
    # A subset build (seeds only, SLA models only) runs the tests whose parents are all built or upstream, not
    # tests on models downstream that may not exist yet. dagster-dbt overrides this when checks are selected.
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    # Always live: as_of = E2A_NOW or the build's start (macros/as_of_timestamp.sql). A past instant is a backtest,
    # which never runs here (lib/backtest.py: its own schemas, no materialization of these assets).
    for event in dbt.cli(["build"], context=context).stream():
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
