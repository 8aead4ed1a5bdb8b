"""``landing_billing_sensor``: new invoice files in ``<landing>/billing`` → one ingestion run per batch."""

from __future__ import annotations

import time

import dagster as dg

from e2a_dagster.lib.billing import BILLING_SUFFIXES
from e2a_dagster.lib.settings import load_settings
from sensors.cursors import FileCursor, FileStamp, batches, new_files, run_key

MAX_FILES_PER_RUN = 20


def list_billing_files(directory) -> list[FileStamp]:
    if not directory.exists():
        return []
    stamps = []
    for entry in directory.iterdir():
        if entry.name.startswith(".") or entry.suffix.lower() not in BILLING_SUFFIXES or not entry.is_file():
            continue
        st = entry.stat()
        stamps.append(FileStamp(st.st_mtime_ns, entry.name, st.st_size))
    return stamps


@dg.sensor(
    name="landing_billing_sensor",
    job_name="ingest_billing_job",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a billing ingestion run for each batch of new invoice files in the landing zone.",
)
def landing_billing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    billing_dir = load_settings().billing_dir
    if not billing_dir.exists():
        return dg.SkipReason(f"billing folder {billing_dir} does not exist yet")
    cursor = FileCursor.parse(context.cursor)
    taken, advanced = new_files(list_billing_files(billing_dir), cursor, now_ns=time.time_ns())
    if not taken:
        return dg.SkipReason(f"no new files in {billing_dir}")
    requests = [
        dg.RunRequest(
            run_key=run_key("billing", batch),
            run_config={"ops": {"raw__invoice_lines": {"config": {"files": [s.name for s in batch]}}}},
            tags={"e2a/files": str(len(batch))},
        )
        for batch in batches(taken, MAX_FILES_PER_RUN)
    ]
    return dg.SensorResult(run_requests=requests, cursor=advanced.dump())
