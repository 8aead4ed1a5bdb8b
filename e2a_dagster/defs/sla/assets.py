"""The warehouse business calendar: written by Python, read by dbt as the source ``calendar.warehouse_calendar``."""

import dagster as dg

from e2a_dagster.defs.automation import DEPS_READY, LIVE
from e2a_dagster.defs.resources import Database
from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.reference import seeds_version
from e2a_dagster.lib.core.settings import reference_dir
from e2a_dagster.lib.sla.calendar import calendar_from_seeds, calendar_window, data_range, write_calendar

CALENDAR_SEEDS = ("warehouses.csv", "calendar_exceptions.csv")

# Built once on a fresh home, rebuilt when the seeds it reads are re-loaded or the seed files or this code change
# (code version = their hash), and daily because the window moves with the date (a cron tick alone: the seeds
# do not change every day).
CALENDAR_AUTOMATION = (
    LIVE | (dg.AutomationCondition.cron_tick_passed("5 0 * * *").since_last_handled() & DEPS_READY)
).with_label("live_or_daily")


@dg.asset(
    key=["reference", "warehouse_calendar"],
    deps=[dg.AssetKey(["reference", "warehouses"]), dg.AssetKey(["reference", "calendar_exceptions"])],
    group_name="reference",
    kinds={"python", "postgres"},
    code_version=seeds_version(CALENDAR_SEEDS, salt="calendar-v2"),
    automation_condition=CALENDAR_AUTOMATION,
    description="Per warehouse and local date: business day or not, opening/closing/cutoff instants in the "
    "warehouse's IANA zone, holiday name (holidays library + seeds/calendar_exceptions.csv).",
)
def warehouse_calendar(context: dg.AssetExecutionContext, database: Database) -> dg.MaterializeResult:
    engine = database.engine
    data_min, data_max = data_range(engine)
    first, last = calendar_window(clock.today(), data_min, data_max)
    days = list(calendar_from_seeds(reference_dir(), first, last))
    count = write_calendar(engine, days)
    business = sum(d.is_business_day for d in days)
    context.log.info(f"warehouse calendar {first} .. {last}: {count} days, {business} business days")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": count,
            "first_date": first.isoformat(),
            "last_date": last.isoformat(),
            "business_days": business,
            "holidays_closed": sum(1 for d in days if d.is_public_holiday and not d.is_business_day),
            "exception_days": sum(1 for d in days if d.exception_reason is not None),
        }
    )
