"""Billable activity by day (``intermediate/int_billable_activities_metered``, with the view it meters from,
``intermediate/int_billable_order_charges``): the daily-partitioned dbt models under the invoice guard. A run of
keys [D1, D2] rebuilds those tenant-local days, for the tenants in its config (all when empty), and records the
refresh so stale invoiced days can be found (lib/invoicing/billing_periods.py)."""

import json
from datetime import timedelta

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from e2a_dagster.defs.dbt_models.assets import stream_dbt
from e2a_dagster.defs.dbt_models.translator import E2ADbtTranslator
from e2a_dagster.defs.invoicing.partitions import billing_days
from e2a_dagster.defs.resources import Database, dbt_project
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.invoicing.billing_periods import record_refresh, refresh_marks, window_metrics, window_vars

BILLABLE_DAILY_SELECT = "tag:billable_daily"
ACTIVITY_KEY = dg.AssetKey(["intermediate", "int_billable_activities_metered"])
CHARGES_KEY = dg.AssetKey(["intermediate", "int_billable_order_charges"])
# The asset's keys and op name, for jobs and run config: the definition itself is made when the code location
# loads (``defs`` below), because its partitions read E2A_BILLING_START.
BILLABLE_KEYS = (ACTIVITY_KEY, CHARGES_KEY)
BILLABLE_OP = "billable_activity_daily"


class BillableActivityConfig(dg.Config):
    tenants: list[str] = []  # noqa: RUF012 (dg.Config is a pydantic model: defaults are copied)
    """Tenants whose days to rebuild; empty = every tenant (what a backfill from the UI does)."""


def billable_activity_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The daily-partitioned dbt asset of the billable activity (keys ``BILLABLE_KEYS``, op ``BILLABLE_OP``)."""

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        select=BILLABLE_DAILY_SELECT,
        name=BILLABLE_OP,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=E2ADbtTranslator(),
    )
    def billable_activity_daily(
        context: dg.AssetExecutionContext, config: BillableActivityConfig, dbt: DbtCliResource, database: Database
    ):
        known = Reference.load().tenants
        unknown = sorted(set(config.tenants) - set(known))
        if unknown:
            raise dg.Failure(f"unknown tenant(s) {unknown}: tenants are those in seeds/tenants.csv ({sorted(known)})")
        tenants = sorted(config.tenants) or sorted(known)
        window = context.partition_time_window
        start, end = window.start.date(), (window.end - timedelta(days=1)).date()
        engine = database.engine
        refreshed_at, orders_built_at = refresh_marks(engine)
        dbt_vars = window_vars(start, end, config.tenants)
        context.log.info(f"rebuilding billable activity {start}..{end} for {', '.join(tenants)}")
        for event in stream_dbt(dbt, ["build", "--vars", json.dumps(dbt_vars)], context):
            # the window's figures describe the metered rows, not the view they are metered from
            if isinstance(event, dg.Output) and context.asset_key_for_output(event.output_name) == ACTIVITY_KEY:
                event = event.with_metadata({**event.metadata, **window_metrics(engine, tenants, start, end)})
            yield event
        marked = record_refresh(
            engine,
            tenants,
            start,
            end,
            refreshed_at=refreshed_at,
            orders_built_at=orders_built_at,
            run_id=context.run.run_id,
        )
        context.log.info(f"{marked} tenant-days marked refreshed as of {refreshed_at.isoformat()}")

    return billable_activity_daily


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[billable_activity_assets(billing_days())])
