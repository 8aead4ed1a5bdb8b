"""``landing_events_sensor``: new files in ``<landing>/events`` → one ingestion run per batch."""

from __future__ import annotations

import time

import dagster as dg

from e2a_dagster.lib.ingest import EVENT_SUFFIXES
from e2a_dagster.lib.settings import load_settings
from sensors.cursors import FileCursor, FileStamp, batches, new_files, run_key

MAX_FILES_PER_RUN = 20


def list_event_files(directory) -> list[FileStamp]:
    if not directory.exists():
        return []
    stamps = []
    for entry in directory.iterdir():
        if entry.name.startswith(".") or entry.suffix.lower() not in EVENT_SUFFIXES or not entry.is_file():
            continue
        st = entry.stat()
        stamps.append(FileStamp(st.st_mtime_ns, entry.name, st.st_size))
    return stamps


@dg.sensor(
    name="landing_events_sensor",
    job_name="ingest_landing_events_job",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingestion run for each batch of new event files in the landing zone.",
)
def landing_events_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    events_dir = load_settings().events_dir
    if not events_dir.exists():
        return dg.SkipReason(f"landing folder {events_dir} does not exist yet")
    cursor = FileCursor.parse(context.cursor)
    taken, advanced = new_files(list_event_files(events_dir), cursor, now_ns=time.time_ns())
    if not taken:
        return dg.SkipReason(f"no new files in {events_dir}")
    requests = [
        dg.RunRequest(
            run_key=run_key("events", batch),
            run_config={"ops": {"raw__order_events": {"config": {"files": [s.name for s in batch]}}}},
            tags={"e2a/files": str(len(batch))},
        )
        for batch in batches(taken, MAX_FILES_PER_RUN)
    ]
    return dg.SensorResult(run_requests=requests, cursor=advanced.dump())
