"""Near-real-time SLA: the SLA models rebuild on new data (eager automation on the dbt models) and on this
schedule with as_of = now, so a stage turns at_risk and then overdue without any new event (DESIGN §1)."""

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from e2a_dagster.defs.dbt_models import assets as dbt_models
from e2a_dagster.defs.resources import Database, dbt_project
from e2a_dagster.lib.database import missing_relations
from e2a_dagster.lib.dbt import upstream_relations

# dbt models tagged `sla`: milestones, calendar model, due times, evaluations, exceptions, compliance.
SLA_DBT_SELECT = "tag:sla"
# What they read and do not build (staging views, seeds, the calendar, raw tables): on a fresh database these
# appear with the first ingestion and automation runs; until then a refresh could only fail.
SLA_INPUTS = upstream_relations("sla", dbt_project.manifest_path)

refresh_sla_job = dg.define_asset_job(
    "refresh_sla_job",
    selection=build_dbt_asset_selection([dbt_models.e2a_dbt_models], dbt_select=SLA_DBT_SELECT),
    description="Re-evaluate the SLA models at as_of = now (live, incremental: cost follows new data and "
    "running stages, not history).",
)


@dg.schedule(
    name="sla_refresh_schedule",
    job=refresh_sla_job,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: statuses move with time alone (on_track -> at_risk -> overdue).",
)
def sla_refresh_schedule(context: dg.ScheduleEvaluationContext, database: Database):
    missing = missing_relations(database.engine, SLA_INPUTS)
    if missing:
        return dg.SkipReason(f"waiting for the SLA models' inputs to be built once: {', '.join(missing)}")
    return dg.RunRequest()
