"""E²A's Dagster code location: a table of contents. Everything lives under ``defs/`` and ``sensors/``."""

import warnings
from pathlib import Path

import dagster as dg

from e2a_dagster.defs.automation import SLA_BUILD_TAGS
from e2a_dagster.defs.quality.freshness import with_freshness
from sensors.invoice_received import invoice_received_sensor
from sensors.landing_billing import landing_billing_sensor
from sensors.landing_events import landing_events_sensor
from sensors.shopify import shopify_sensor

# A preview feature used on purpose (freshness policies on the dbt models): said here once, not in every
# process's log.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=r".*map_resolved_asset_specs")

# One run per wave of new data (conditions in defs/automation.py). Its runs carry the SLA-build tag: the run
# queue runs them one at a time with the ingestion waves and the refresh, and the conditions' in-progress terms
# coalesce what lands meanwhile into the next run.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    run_tags=SLA_BUILD_TAGS,
)


@dg.definitions
def defs() -> dg.Definitions:
    return with_freshness(
        dg.Definitions.merge(
            dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
            dg.Definitions(
                sensors=[
                    landing_events_sensor,
                    landing_billing_sensor,
                    invoice_received_sensor,
                    shopify_sensor,
                    automation_sensor,
                ],
                # Steps run in the run's own process: a step process would load the code location again (seconds
                # on 2 cores) for steps that mostly wait on PostgreSQL and dbt.
                executor=dg.in_process_executor,
            ),
        )
    )
