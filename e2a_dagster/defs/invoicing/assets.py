"""Billing ingestion (``raw/invoice_lines``) and invoice adjustments (``actions/invoice_adjustments``)."""

import dagster as dg

from e2a_dagster.defs.automation import LIVE
from e2a_dagster.defs.ingestion.assets import INGEST_TAG, mark_listed
from e2a_dagster.defs.resources import Database, LandingZone, Notifier
from e2a_dagster.lib.core.reports import markdown_table
from e2a_dagster.lib.ingestion.ingest import files_to_load, load_files, total_reject_codes
from e2a_dagster.lib.invoicing.adjustments import sync_adjustments
from e2a_dagster.lib.invoicing.billing import billing_ingested_hashes, ingest_billing_file, pending_billing_files
from e2a_dagster.lib.invoicing.invoice_metrics import reconciliation_metrics


class BillingFilesConfig(dg.Config):
    files: list[str] = []  # noqa: RUF012 (dg.Config is a pydantic model: defaults are copied)
    """File names in ``<landing>/billing`` to load; empty = every file not in the ledger yet."""


@dg.asset(
    key=["raw", "invoice_lines"],
    group_name="ingestion",
    kinds={"python", "postgres"},
    description="Billed invoice lines from <landing>/billing/*.csv (DESIGN §4.3), versioned by content hash; "
    "rejects go to ops.rejected_records (source billing).",
)
def invoice_lines(
    context: dg.AssetExecutionContext, config: BillingFilesConfig, database: Database, landing: LandingZone
) -> dg.MaterializeResult:
    engine = database.engine
    reference = landing.reference()
    paths, missing = files_to_load(
        landing.billing_dir, config.files, pending_billing_files, lambda: billing_ingested_hashes(engine)
    )
    mark_listed(context, f"{len(paths)} file(s)")
    if missing:
        context.log.warning(f"files no longer in the landing zone (skipped): {missing}")
    results, failures = load_files(paths, lambda path: ingest_billing_file(engine, path, reference))
    if failures:
        # Every other file is in; these failed for a reason that is not their content (a bug, the database).
        raise dg.Failure(
            description=f"{len(failures)} of {len(paths)} file(s) could not be loaded: " + "; ".join(failures),
            metadata={"failed_files": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures))},
        )
    codes = total_reject_codes(results)
    with engine.connect() as conn:
        total = conn.exec_driver_sql("select count(*) from raw.invoice_lines").scalar_one()
    return dg.MaterializeResult(
        metadata={
            "files": len(results),
            "lines_loaded": sum(r.loaded for r in results),
            "lines_superseding": sum(r.superseding for r in results),
            "duplicates": sum(r.duplicates for r in results),
            "rejected": sum(r.rejected for r in results),
            "rejected_by_code": codes,
            "files_rejected_whole": [r.file_name for r in results if r.file_rejected],
            "dagster/row_count": total,
            "files_detail": dg.MetadataValue.md(
                markdown_table([r.as_dict() for r in results]) if results else "_no new files_"
            ),
        }
    )


@dg.asset(
    key=["actions", "invoice_adjustments"],
    deps=[dg.AssetKey(["marts", "fct_invoice_reconciliation"])],
    group_name="finance",
    kinds={"python", "postgres"},
    automation_condition=LIVE,
    description="One adjustment per non-matched reconciliation row (correction or SLA credit), with "
    "evidence and approval status; idempotent upsert, vanished discrepancies marked superseded. The run guard "
    "sends a tenant's mass auto-approvals to review, with one notification saying why.",
)
def invoice_adjustments(
    context: dg.AssetExecutionContext, database: Database, notifier: Notifier
) -> dg.MaterializeResult:
    engine = database.engine
    result = sync_adjustments(engine, notify_enabled=notifier.url is not None)
    for trip in result.guard_trips:
        context.log.warning(f"run guard held {trip.count} auto-approvals of {trip.tenant_id}: {trip.reason}")
    with engine.connect() as conn:
        preview = [
            dict(r)
            for r in conn.exec_driver_sql(
                """
                select invoice_id, period_start, charge_code, order_id, kind, amount, currency, approval_status
                from actions.invoice_adjustments where status = 'open'
                order by abs(amount) desc, adjustment_id limit 10
                """
            ).mappings()
        ]
    context.log.info(f"adjustments: {result.as_metadata()}")
    return dg.MaterializeResult(
        metadata={
            **result.as_metadata(),
            **{k: v for k, v in reconciliation_metrics(engine).items() if k != "dagster/row_count"},
            "dagster/row_count": result.adjustments,
            "largest_open": dg.MetadataValue.md(markdown_table(preview) if preview else "_none_"),
        }
    )


ingest_billing_job = dg.define_asset_job(
    "ingest_billing_job",
    selection=dg.AssetSelection.assets(invoice_lines),
    tags={INGEST_TAG: "billing"},
    description="Load billing files from the landing zone (requested by landing_billing_sensor).",
)
