"""Ingestion of the landing zone into ``raw.order_events``."""

import dagster as dg

from e2a_dagster.defs.automation import EVENTS_WAVE, SLA_BUILD_TAGS
from e2a_dagster.defs.resources import Database, LandingZone
from e2a_dagster.lib.core.reports import markdown_table
from e2a_dagster.lib.ingestion.ingest import (
    files_to_load,
    ingest_file,
    ingested_hashes,
    load_files,
    pending_files,
    total_reject_codes,
)

# Run tags of the ingestion jobs. The run queue runs one ingestion run per source at a time (dagster.yaml); the
# sensors ask for no new run while one that will still list its source is waiting (sensors/runs.py).
INGEST_TAG = "e2a/ingest"
# Set on the run once the asset has listed what it takes: new work from then on needs another run.
LISTED_TAG = "e2a/listed"


def mark_listed(context: dg.AssetExecutionContext, what: str) -> None:
    context.instance.add_run_tags(context.run.run_id, {LISTED_TAG: what})


class LandingEventsConfig(dg.Config):
    files: list[str] = []  # noqa: RUF012 (dg.Config is a pydantic model: defaults are copied)
    """File names in ``<landing>/events`` to load; empty = every file not in the ledger yet."""


@dg.asset(
    key=["raw", "order_events"],
    group_name="ingestion",
    kinds={"python", "postgres"},
    description="Canonical order events from the landing zone (DESIGN §4.1), loaded idempotently; rejects go "
    "to ops.rejected_records.",
)
def order_events(
    context: dg.AssetExecutionContext, config: LandingEventsConfig, database: Database, landing: LandingZone
) -> dg.MaterializeResult:
    engine = database.engine
    reference = landing.reference()
    paths, missing = files_to_load(landing.events_dir, config.files, pending_files, lambda: ingested_hashes(engine))
    mark_listed(context, f"{len(paths)} file(s)")
    if missing:
        context.log.warning(f"files no longer in the landing zone (skipped): {missing}")
    results, failures = load_files(paths, lambda path: ingest_file(engine, path, reference))
    if failures:
        # Every other file is in; these failed for a reason that is not their content (a bug, the database).
        raise dg.Failure(
            description=f"{len(failures)} of {len(paths)} file(s) could not be loaded: " + "; ".join(failures),
            metadata={"failed_files": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures))},
        )
    loaded = sum(r.loaded for r in results)
    rejected = sum(r.rejected for r in results)
    codes = total_reject_codes(results)
    with engine.connect() as conn:
        total = conn.exec_driver_sql("select count(*) from raw.order_events").scalar_one()
    context.log.info(f"{len(results)} file(s): {loaded} events loaded, {rejected} rejected")
    return dg.MaterializeResult(
        metadata={
            "files": len(results),
            "events_loaded": loaded,
            "duplicates": sum(r.duplicates for r in results),
            "rejected": rejected,
            "rejected_by_code": codes,
            "files_rejected_whole": [r.file_name for r in results if r.file_rejected],
            "total_events": total,
            "dagster/row_count": total,
            "files_detail": dg.MetadataValue.md(
                markdown_table([r.as_dict() for r in results]) if results else "_no new files_"
            ),
        }
    )


ingest_landing_events_job = dg.define_asset_job(
    "ingest_landing_events_job",
    selection=EVENTS_WAVE,
    # An SLA build too: the queue runs it after (never beside) another one, and the refresh waits. It
    # goes first among the queued SLA builds (an automation run, the refresh): new events are what users wait for,
    # and it evaluates every running stage at its start as the others would.
    tags={INGEST_TAG: "events", **SLA_BUILD_TAGS, "dagster/priority": "1"},
    description="Load every landing-zone event file not loaded yet (requested by landing_events_sensor), then "
    "rebuild what they reach: the SLA models, KPIs, narratives and notifications (defs/automation.py EVENTS_WAVE).",
)
