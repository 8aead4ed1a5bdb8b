"""The nightly invoice guard (DESIGN §6, issue 5).

``reconcile_invoices_job`` loads any invoice file not loaded yet, rebuilds the daily billable activity for a
range of partition keys (tenant-local days) and tenants, then the monthly pricing, expected charges and
reconciliation, and writes the adjustments. It runs:

- at 02:00 in each tenant time zone (``reconcile_invoices_<zone>_schedule``), for that zone's tenants: the
  previous local day, plus every stale day of an invoiced period (lib/invoicing/billing_periods.py);
- from ``invoice_received_sensor`` as soon as an invoiced period has stale days (a new invoice, a late event);
- as a backfill from the Dagster UI (asset graph → select ``int_billable_activities_metered`` and what is
  downstream → Materialize → a range of days: one run, single-run backfill policy)."""

from datetime import UTC, date, datetime

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from e2a_dagster.defs.dbt_models import assets as dbt_models
from e2a_dagster.defs.invoicing.assets import invoice_adjustments, invoice_lines
from e2a_dagster.defs.invoicing.billable_activity import BILLABLE_KEYS, BILLABLE_OP
from e2a_dagster.defs.resources import Database
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.invoicing.billing_periods import (
    RefreshPlan,
    first_billing_day,
    plan_refresh,
    previous_local_day,
    stale_days,
    tenants_by_zone,
)

# dbt models tagged `invoice` (billing staging, priced activity, expected charges, reconciliation) other than
# the daily billable activity, which is its own partitioned asset.
INVOICE_DBT_SELECT = "tag:invoice"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

reconcile_invoices_job = dg.define_asset_job(
    "reconcile_invoices_job",
    selection=(
        dg.AssetSelection.assets(invoice_lines)
        | dg.AssetSelection.assets(*BILLABLE_KEYS)
        | build_dbt_asset_selection([dbt_models.e2a_dbt_models], dbt_select=INVOICE_DBT_SELECT)
        | dg.AssetSelection.assets(invoice_adjustments)
    ),
    # partitioned by the billing days (defs/invoicing/partitions.py): Dagster infers it from the one partitioned
    # asset selected
    tags={"e2a/invoice_guard": "true"},
    description="Invoice guard: load received invoices, rebuild the billable activity of a range of "
    "tenant-local days (config: tenants, empty = all), the expected charges and the reconciliation, write "
    "the adjustments.",
)


def last_billing_day(now: datetime) -> date:
    """The newest partition key at ``now``: the billing days are daily in UTC with end_offset=1, so today (UTC)."""
    return now.astimezone(UTC).date()


def run_request(plan: RefreshPlan, *, run_key: str | None = None, origin: str) -> dg.RunRequest:
    """The reconcile run of ``plan``: its partition range, its tenants, and why (tags)."""
    start, end = plan.partition_range()
    tags = {"e2a/origin": origin, "e2a/tenants": ",".join(plan.tenants)}
    # one tag per tenant: why its days are rebuilt (a tag key has one namespace: e2a/why.<tenant>)
    tags.update({f"e2a/why.{k}": v[:250] for k, v in plan.reasons.items()})
    partition_key = None
    if start == end:
        partition_key = start
    else:
        tags.update({RANGE_START_TAG: start, RANGE_END_TAG: end})
    return dg.RunRequest(
        run_key=run_key,
        partition_key=partition_key,
        run_config={"ops": {BILLABLE_OP: {"config": {"tenants": list(plan.tenants)}}}},
        tags=tags,
    )


def nightly_plan(database: Database, tenants: list[str], time_zone: str, now: datetime) -> RefreshPlan | None:
    first, last = first_billing_day(), last_billing_day(now)
    stale = stale_days(database.engine, tenants, first_day=first, last_day=last)
    return plan_refresh(tenants, stale, yesterday=previous_local_day(now, time_zone), first_day=first, last_day=last)


def schedule_name(time_zone: str) -> str:
    return "reconcile_invoices_" + "".join(c if c.isalnum() else "_" for c in time_zone.lower()) + "_schedule"


def nightly_schedule(time_zone: str, tenants: list[str]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=schedule_name(time_zone),
        job=reconcile_invoices_job,
        cron_schedule="0 2 * * *",
        execution_timezone=time_zone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags={"e2a/time_zone": time_zone},
        description=f"02:00 {time_zone}: the previous local day is complete for {', '.join(tenants)}; "
        "rebuild it, and every stale day of an invoiced period, then reconcile.",
    )
    def _nightly(context: dg.ScheduleEvaluationContext, database: Database):
        now = context.scheduled_execution_time
        plan = nightly_plan(database, tenants, time_zone, now)
        if plan is None:
            return dg.SkipReason(
                f"no billing day to refresh at {now.isoformat()} (before {first_billing_day().isoformat()})"
            )
        return run_request(plan, origin=f"schedule:{time_zone}")

    return _nightly


def nightly_schedules() -> list[dg.ScheduleDefinition]:
    return [nightly_schedule(zone, tenants) for zone, tenants in tenants_by_zone(Reference.load().tenants).items()]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(schedules=nightly_schedules())
