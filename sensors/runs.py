"""Coalescing ingestion runs: at most one waiting run per source, and no work lost to a cancelled or failed one.

An ingestion run takes everything pending when it starts (every file not in the ledger, every Shopify order
past the committed high-water mark), so while one is waiting to start, or has started but not yet listed its
work, anything new is already covered: the sensor asks for nothing more. The ingestion assets tag their run
with ``LISTED_TAG`` once they have listed what they take. The run queue keeps one run per source running
(``e2a/ingest`` tag concurrency limit, dagster.yaml); a run asked for meanwhile waits behind it."""

from __future__ import annotations

import time

import dagster as dg

from e2a_dagster.defs.ingestion.assets import LISTED_TAG

WAITING = frozenset({dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING})
# A failed ingestion run (database down, say) is asked again after this long, once per failed run.
RETRY_FAILED_AFTER_S = 60.0


def latest_run(instance: dg.DagsterInstance, job_name: str) -> dg.RunRecord | None:
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=1)
    return records[0] if records else None


def covers_new_work(run: dg.DagsterRun) -> bool:
    """The run will still list what is pending: it is waiting to start, or started but has not listed yet."""
    return run.status in WAITING or (run.status == dg.DagsterRunStatus.STARTED and LISTED_TAG not in run.tags)


def retry_key(record: dg.RunRecord | None, *, now: float | None = None) -> str | None:
    """A run key asking again for the work of the latest run if it did not finish: cancelled (``e2a dev``
    cancels queued runs when it stops), or failed more than ``RETRY_FAILED_AFTER_S`` ago. One per such run."""
    if record is None:
        return None
    run = record.dagster_run
    if run.status == dg.DagsterRunStatus.CANCELED:
        return f"retry-after-cancel:{run.run_id}"
    ended = record.end_time or record.update_timestamp.timestamp()
    if run.status == dg.DagsterRunStatus.FAILURE and (now or time.time()) - ended >= RETRY_FAILED_AFTER_S:
        return f"retry-after-failure:{run.run_id}"
    return None


def describe(run: dg.DagsterRun) -> str:
    state = "queued" if run.status in WAITING else "starting"
    return f"run {run.run_id[:8]} ({state}) will take it"
