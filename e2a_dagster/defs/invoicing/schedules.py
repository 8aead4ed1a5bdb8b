"""The nightly invoice guard: at 02:00 in each tenant time zone, load any invoice received, rebuild the
expected charges and the reconciliation, and write the adjustments. The models are full rebuilds, so every run
covers the previous day and every invoiced month; a backfill is a launch of the job from the Dagster UI."""

import csv

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from e2a_dagster.defs.dbt_models import assets as dbt_models
from e2a_dagster.defs.invoicing.assets import invoice_adjustments, invoice_lines
from e2a_dagster.lib.settings import SEEDS_DIR

# dbt models tagged `invoice`: billing staging, metered and priced activity, expected charges, reconciliation.
INVOICE_DBT_SELECT = "tag:invoice"

reconcile_invoices_job = dg.define_asset_job(
    "reconcile_invoices_job",
    selection=(
        dg.AssetSelection.assets(invoice_lines)
        | build_dbt_asset_selection([dbt_models.e2a_dbt_models], dbt_select=INVOICE_DBT_SELECT)
        | dg.AssetSelection.assets(invoice_adjustments)
    ),
    description="Invoice guard: ingest received invoices, rebuild expected charges and the reconciliation, "
    "write adjustments (full rebuild: every open month is refreshed, so yesterday's activity is included).",
)


def tenant_time_zones() -> list[str]:
    """The distinct IANA zones of the tenants in seeds/tenants.csv (reference data shipped with the code)."""
    with (SEEDS_DIR / "tenants.csv").open(newline="", encoding="utf-8") as fh:
        return sorted({row["time_zone"].strip() for row in csv.DictReader(fh) if row.get("time_zone")})


def schedule_name(time_zone: str) -> str:
    return "reconcile_invoices_" + "".join(c if c.isalnum() else "_" for c in time_zone.lower()) + "_schedule"


def nightly_schedules() -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name=schedule_name(zone),
            job=reconcile_invoices_job,
            cron_schedule="0 2 * * *",
            execution_timezone=zone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags={"e2a/time_zone": zone},
            description=f"02:00 {zone}: the previous local day is complete for the tenants in this zone.",
        )
        for zone in tenant_time_zones()
    ]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(schedules=nightly_schedules())
