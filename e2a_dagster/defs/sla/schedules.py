"""Near-real-time SLA: the SLA models rebuild on new data (eager automation on the dbt models) and on this
schedule with as_of = now, so a stage turns at_risk and then overdue without any new event (DESIGN §1)."""

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from e2a_dagster.defs.dbt_models import assets as dbt_models

# dbt models tagged `sla`: milestones, calendar model, due times, evaluations, exceptions, compliance.
SLA_DBT_SELECT = "tag:sla"

refresh_sla_job = dg.define_asset_job(
    "refresh_sla_job",
    selection=build_dbt_asset_selection([dbt_models.e2a_dbt_models], dbt_select=SLA_DBT_SELECT),
    description="Re-evaluate the SLA models at as_of = now (live, incremental: cost follows new data and "
    "running stages, not history).",
)

sla_refresh_schedule = dg.ScheduleDefinition(
    name="sla_refresh_schedule",
    job=refresh_sla_job,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: statuses move with time alone (on_track -> at_risk -> overdue).",
)
