"""Great Expectations suites (``lib/quality/suites.py``) as asset checks.

Blocking checks stop what depends on the asset in the same run: a failing ``raw/order_events`` check keeps the
dbt models from building on a bad batch; a failing ``fct_sla_evaluations`` check keeps notifications and the
radar report from acting on wrong SLA figures (the dbt models of that build are one step, already written)."""

import dagster as dg

from e2a_dagster.defs.resources import Database, LandingZone
from e2a_dagster.lib.core.reports import markdown_table
from e2a_dagster.lib.quality import suites as quality

ORDER_EVENTS = dg.AssetKey(["raw", "order_events"])
SLA_EVALUATIONS = dg.AssetKey(["marts", "fct_sla_evaluations"])


def check_result(
    outcome: quality.SuiteOutcome, *, severity=dg.AssetCheckSeverity.ERROR, **extra
) -> dg.AssetCheckResult:
    """Counts per expectation, failing-row count and a sample of failing rows as readable metadata."""
    expectations = [
        {
            "expectation": e.expectation + (f"({e.column})" if e.column else ""),
            "checked": e.checked,
            "failed": e.failed,
            "ok": "yes" if e.success else "NO",
        }
        for e in outcome.expectations
    ]
    metadata = {
        "rows_checked": outcome.rows_checked,
        "failed_rows": outcome.failed_row_count,
        "failed_expectations": len(outcome.failed_expectations),
        "expectations": dg.MetadataValue.md(markdown_table(expectations) or "_none_"),
        **extra,
    }
    if outcome.failed_rows:
        metadata["failed_rows_sample"] = dg.MetadataValue.md(markdown_table(outcome.failed_rows))
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=severity,
        metadata=metadata,
        description=None
        if outcome.passed
        else f"{len(outcome.failed_expectations)} expectation(s) failed on "
        f"{outcome.failed_row_count} value(s); see failed_rows_sample",
    )


@dg.asset_check(
    asset=ORDER_EVENTS,
    blocking=True,
    description="GX suite on the events ingested since the last passing run: required fields, known event "
    "types and tenants, non-negative quantities, occurred_at not before 2000 nor after ingestion + 1 h. "
    "Blocks the dbt models. A failure keeps failing until the bad rows are removed or corrected.",
)
def order_events_are_well_formed(database: Database, landing: LandingZone) -> dg.AssetCheckResult:
    engine = database.engine
    name = "order_events_are_well_formed"
    since = quality.read_watermark(engine, name)
    outcome = quality.check_order_events(engine, sorted(landing.reference().tenants), since)
    checked_through = outcome.extra["checked_through"]
    if outcome.passed and checked_through is not None:
        quality.advance_watermark(engine, name, checked_through)
    return check_result(
        outcome,
        checked_since=since.isoformat() if since else "beginning",
        files=dg.MetadataValue.md("\n".join(f"- {f}" for f in outcome.extra["files"]) or "_none_"),
    )


@dg.asset_check(
    asset=ORDER_EVENTS,
    description="Per source and complete UTC day touched by new events (and yesterday): events vs the median "
    "of the same weekday over the four previous weeks; below 50 % is a drop (a missing file). Warns only: "
    "volume legitimately varies (holidays, promotions).",
)
def order_event_volume_is_steady(database: Database) -> dg.AssetCheckResult:
    engine = database.engine
    since = quality.read_watermark(engine, "order_events_are_well_formed")
    outcome = quality.check_event_volume(engine, since)
    return check_result(
        outcome,
        severity=dg.AssetCheckSeverity.WARN,
        days_without_baseline=outcome.extra["days_without_baseline"],
    )


@dg.asset_check(
    asset=SLA_EVALUATIONS,
    blocking=True,
    description="GX suite on every evaluation: known stage and status, due_at >= started_at, minutes_late >= 0 "
    "and a severity exactly when late or overdue (null otherwise). Blocks notifications and the radar report.",
)
def sla_evaluations_are_consistent(database: Database) -> dg.AssetCheckResult:
    return check_result(quality.check_sla_evaluations(database.engine))


RECONCILIATION = dg.AssetKey(["marts", "fct_invoice_reconciliation"])
ADJUSTMENTS = dg.AssetKey(["actions", "invoice_adjustments"])


@dg.asset_check(
    asset=RECONCILIATION,
    blocking=True,
    description="GX suite on every reconciliation row: known discrepancy type, delta_amount = billed − expected "
    "to the cent, matched rows within tolerance. Blocks the adjustments.",
)
def invoice_reconciliation_is_consistent(database: Database) -> dg.AssetCheckResult:
    return check_result(quality.check_invoice_reconciliation(database.engine))


@dg.asset_check(
    asset=ADJUSTMENTS,
    blocking=True,
    description="Per invoice, the open adjustments sum to −Σ delta_amount of the non-matched reconciliation rows, "
    "one adjustment per row. Blocks notifications about adjustments.",
)
def adjustments_balance_reconciliation(database: Database) -> dg.AssetCheckResult:
    return check_result(quality.check_invoice_adjustments(database.engine))
