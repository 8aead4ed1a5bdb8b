"""``landing_billing_sensor``: new invoice files in ``<landing>/billing`` → one ingestion run for everything pending."""

from e2a_dagster.lib.invoicing.billing import BILLING_SUFFIXES
from sensors.landing_files import landing_file_sensor

landing_billing_sensor = landing_file_sensor(
    name="landing_billing_sensor",
    job_name="ingest_billing_job",
    kind="billing",
    folder=lambda settings: settings.billing_dir,
    suffixes=BILLING_SUFFIXES,
    minimum_interval_seconds=30,
    description="Requests one billing ingestion run for the new invoice files in the landing zone "
    "(none while one is waiting).",
)
