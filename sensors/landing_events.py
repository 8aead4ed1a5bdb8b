"""``landing_events_sensor``: new files in ``<landing>/events`` → one ingestion run for everything pending."""

import dagster as dg

from e2a_dagster.lib.ingestion.ingest import EVENT_SUFFIXES
from sensors.landing_files import landing_file_sensor

landing_events_sensor = landing_file_sensor(
    name="landing_events_sensor",
    job_name="ingest_landing_events_job",
    kind="events",
    folder=lambda settings: settings.events_dir,
    suffixes=EVENT_SUFFIXES,
    minimum_interval_seconds=5,
    loads=dg.AssetKey(["raw", "order_events"]),
    description="Requests one ingestion run for the new event files in the landing zone (none while one is waiting).",
)
