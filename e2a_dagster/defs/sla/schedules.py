"""Near-real-time SLA: the SLA models rebuild on new data (the ingestion waves, live automation on the dbt models)
and on this schedule with as_of = now, so a stage turns at_risk and then overdue without any new event (DESIGN §1).

Every SLA build evaluates at the instant it starts, whatever started it. The schedule keeps the statuses no older
than five minutes: it looks every minute and asks for a build only when none started in the last four. Under a
steady feed the ingestion waves keep the statuses fresh and the refresh never competes with them for the one SLA
build the queue runs at a time."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from e2a_dagster.defs.automation import SLA_BUILD_TAGS
from e2a_dagster.defs.dbt_models import assets as dbt_models
from e2a_dagster.defs.resources import Database, dbt_project
from e2a_dagster.lib.core.database import missing_relations
from e2a_dagster.lib.core.dbt import upstream_relations

# dbt models tagged `sla`: milestones, calendar model, due times, evaluations, exceptions, compliance.
SLA_DBT_SELECT = "tag:sla"
# What they read and do not build (staging views, seeds, the calendar, raw tables): on a fresh database these
# appear with the first ingestion and automation runs; until then a refresh could only fail.
SLA_INPUTS = upstream_relations("sla", dbt_project.manifest_path)

refresh_sla_job = dg.define_asset_job(
    "refresh_sla_job",
    selection=build_dbt_asset_selection([dbt_models.e2a_dbt_models], dbt_select=SLA_DBT_SELECT),
    tags=SLA_BUILD_TAGS,
    description="Re-evaluate the SLA models at as_of = now (live, incremental: cost follows new data and "
    "running stages, not history).",
)


@dg.schedule(
    name="sla_refresh_schedule",
    job=refresh_sla_job,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Statuses move with time alone (on_track -> at_risk -> overdue): a build whenever none started in "
    "the last 4 minutes, so no status is older than 5.",
)
def sla_refresh_schedule(context: dg.ScheduleEvaluationContext, database: Database):
    missing = missing_relations(database.engine, SLA_INPUTS)
    if missing:
        return dg.SkipReason(f"waiting for the SLA models' inputs to be built once: {', '.join(missing)}")
    waiting = context.instance.get_run_records(
        filters=dg.RunsFilter(tags=SLA_BUILD_TAGS, statuses=list(WAITING)), limit=1
    )
    if waiting:
        run = waiting[0].dagster_run
        return dg.SkipReason(f"an SLA build is queued already ({run.job_name} {run.run_id[:8]}): it evaluates at now")
    since = datetime.now(UTC) - FRESH_FOR
    recent = context.instance.get_run_records(
        filters=dg.RunsFilter(tags=SLA_BUILD_TAGS, statuses=list(FRESH), created_after=since), limit=1
    )
    if recent:
        run = recent[0]
        created = run.create_timestamp.astimezone(UTC).strftime("%H:%M:%S UTC")
        return dg.SkipReason(
            f"statuses are fresh: {run.dagster_run.job_name} {run.dagster_run.run_id[:8]} (queued at {created}) "
            f"evaluated them at its start, less than {FRESH_FOR.seconds // 60} minutes ago"
        )
    # The run names its assets: automation then knows they were rebuilt together (`executed_with_root_target`)
    # and does not rebuild them again downstream of each other.
    job = context.repository_def.get_job(refresh_sla_job.name)
    return dg.RunRequest(asset_selection=sorted(job.asset_layer.selected_asset_keys))


# Not started yet: such a build will evaluate at the instant it starts, which is what this tick asks for.
WAITING = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING)
# Started (and so evaluated) at or after it was queued: queued within FRESH_FOR, its statuses are at most that old
# and, with the schedule looking every minute, none gets older than five minutes.
FRESH = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS)
FRESH_FOR = timedelta(minutes=4)
