"""File sensors over a landing-zone folder: new files (by the JSON cursor in ``cursors.py``) → at most one
ingestion run per source, ``run_key`` = the files it was asked for. ``landing_events_sensor`` and
``landing_billing_sensor`` are two of these.

The run takes every file not in the ledger when it starts (the asset's empty ``files`` list), so files landing
while a run waits are covered by it and the sensor asks for nothing more (``runs.py``); a burst of files is one
run, not one per file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg

from e2a_dagster.lib.core.settings import Settings, load_settings
from sensors import runs
from sensors.cursors import FileCursor, FileStamp, new_files, run_key


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


def job_assets(
    context: dg.SensorEvaluationContext, job_name: str, loads: dg.AssetKey | None = None
) -> list[dg.AssetKey] | None:
    """The assets of ``job_name``, named on each request: a run that names them tells automation they were built
    together (``executed_with_root_target``), so it does not rebuild them again. Until every one of them has been
    built once (a fresh home: the automation sensor's first run builds the seeds, views and models they read),
    only ``loads``, the asset that loads the files: the rest would fail on relations that do not exist yet, and
    automation builds it once the data is in. None for a context without a repository (a bare test context):
    such a run covers the job's whole selection all the same."""
    if context.repository_def is None:
        return None
    keys = sorted(context.repository_def.get_job(job_name).asset_layer.selected_asset_keys)
    if loads is not None and any(
        k != loads and context.instance.get_latest_materialization_event(k) is None for k in keys
    ):
        return [loads]
    return keys


def landing_file_sensor(
    *,
    name: str,
    job_name: str,
    kind: str,
    folder: Callable[[Settings], Path],
    suffixes: Iterable[str],
    minimum_interval_seconds: int,
    description: str,
    loads: dg.AssetKey | None = None,
) -> dg.SensorDefinition:
    """A sensor asking for one run of ``job_name`` covering every new file in ``folder(settings)``, unless a run
    of it that will still list the folder is waiting."""
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
        latest = runs.latest_run(context.instance, job_name)
        if latest is not None and runs.covers_new_work(latest.dagster_run):
            what = f"{len(taken)} new file(s)" if taken else "nothing new"
            return dg.SensorResult(skip_reason=f"{what}: {runs.describe(latest.dagster_run)}", cursor=advanced.dump())
        if taken:
            tags = {"e2a/files": str(len(taken)), "e2a/first_file": taken[0].name, "e2a/last_file": taken[-1].name}
            assets = job_assets(context, job_name, loads)
            request = dg.RunRequest(run_key=run_key(kind, taken), tags=tags, asset_selection=assets)
            return dg.SensorResult(run_requests=[request], cursor=advanced.dump())
        retry = runs.retry_key(latest)
        if retry is not None:
            # The last run was cancelled or failed: whatever it should have loaded is still pending.
            request = dg.RunRequest(run_key=f"{kind}:{retry}", asset_selection=job_assets(context, job_name, loads))
            return dg.SensorResult(run_requests=[request], cursor=advanced.dump())
        return dg.SkipReason(f"no new files in {directory}")

    return _sensor
