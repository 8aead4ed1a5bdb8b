"""E²A's Dagster code location: a table of contents. Everything lives under ``defs/`` and ``sensors/``."""

from pathlib import Path

import dagster as dg

from e2a_dagster.defs.quality.freshness import with_freshness
from sensors.invoice_received import invoice_received_sensor
from sensors.landing_billing import landing_billing_sensor
from sensors.landing_events import landing_events_sensor
from sensors.shopify import shopify_sensor

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
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
                ]
            ),
        )
    )
