"""File sensors over a landing-zone folder: new files (by the JSON cursor in ``cursors.py``) → one ingestion run
per batch, ``run_key`` = the batch. ``landing_events_sensor`` and ``landing_billing_sensor`` are two of these."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg

from e2a_dagster.lib.settings import Settings, load_settings
from sensors.cursors import FileCursor, FileStamp, batches, new_files, run_key

MAX_FILES_PER_RUN = 20


def list_files(directory: Path, suffixes: Iterable[str]) -> list[FileStamp]:
    """Visible files of ``directory`` with one of ``suffixes`` (lower case), as cursor stamps."""
    if not directory.exists():
        return []
    wanted = {s.lower() for s in suffixes}
    stamps = []
    for entry in directory.iterdir():
        if entry.name.startswith(".") or entry.suffix.lower() not in wanted or not entry.is_file():
            continue
        st = entry.stat()
        stamps.append(FileStamp(st.st_mtime_ns, entry.name, st.st_size))
    return stamps


def landing_file_sensor(
    *,
    name: str,
    job_name: str,
    op_name: str,
    kind: str,
    folder: Callable[[Settings], Path],
    suffixes: Iterable[str],
    minimum_interval_seconds: int,
    description: str,
) -> dg.SensorDefinition:
    """A sensor requesting a run of ``job_name`` for each batch of new files in ``folder(settings)``; the
    batch's file names go to the ``files`` config of ``op_name``."""
    suffixes = tuple(suffixes)

    @dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        directory = folder(load_settings())
        if not directory.exists():
            return dg.SkipReason(f"landing folder {directory} does not exist yet")
        cursor = FileCursor.parse(context.cursor)
        taken, advanced = new_files(list_files(directory, suffixes), cursor, now_ns=time.time_ns())
        if not taken:
            return dg.SkipReason(f"no new files in {directory}")
        requests = [
            dg.RunRequest(
                run_key=run_key(kind, batch),
                run_config={"ops": {op_name: {"config": {"files": [s.name for s in batch]}}}},
                tags={"e2a/files": str(len(batch))},
            )
            for batch in batches(taken, MAX_FILES_PER_RUN)
        ]
        return dg.SensorResult(run_requests=requests, cursor=advanced.dump())

    return _sensor
