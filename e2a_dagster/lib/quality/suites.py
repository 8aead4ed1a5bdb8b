"""Data-quality suites (Great Expectations 1.x) over E²A's tables, as plain functions.

Each ``check_*`` function reads what it validates with one SQL query into a pandas DataFrame (only the columns
the expectations need), validates it against a GX suite in an ephemeral context (no files, no analytics), and
returns a :class:`SuiteOutcome`: passed or not, counts per expectation and a sample of failing rows. The Dagster
wiring (``defs/quality``) turns that into an asset check result; the functions do not know about Dagster.

GX is imported lazily: loading the Dagster definitions must not pay its import time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.vocabulary import DISCREPANCY_TYPES, SEVERITIES, SLA_STAGES, SLA_STATUSES
from e2a_dagster.lib.ingestion.events import EVENT_TYPES

# Plausible event times: not before this instant (epoch-zero and year-1 typos), not later than the ingestion
# clock plus this skew (an event cannot be received before it happened).
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(hours=1)
# Incremental checks re-read this much before their watermark (transactions that committed late).
WATERMARK_OVERLAP = timedelta(minutes=10)
# Volume: a complete day with fewer events than this share of the same weekday's median over the previous
# four weeks is a drop; a baseline needs at least this many such days.
VOLUME_MIN_RATIO = 0.5
VOLUME_MIN_BASELINE_DAYS = 2
SAMPLE_ROWS = 10


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    checked: int
    failed: int


@dataclass
class SuiteOutcome:
    suite: str
    passed: bool
    rows_checked: int
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    failed_rows: list[dict[str, Any]] = field(default_factory=list)
    """A sample (at most SAMPLE_ROWS) of the rows failing any expectation, with the failed expectations."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_expectations(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    @property
    def failed_row_count(self) -> int:
        return sum(e.failed for e in self.expectations)


# ----------------------------------------------------------------------------------------------------
# GX plumbing


def _gx():
    # No GX_ANALYTICS_ENABLED here: GX 1.24 has no analytics to turn off (it reads that variable nowhere).
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def validate_frame(
    suite_name: str,
    frame: pd.DataFrame,
    expectations: Sequence[Any],
    key_columns: Sequence[str],
    *,
    sample_columns: Sequence[str] | None = None,
) -> SuiteOutcome:
    """Validate ``frame`` against ``expectations`` in an ephemeral GX context; collect a failing-row sample."""
    gx, _ = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if frame.empty:
        return SuiteOutcome(
            suite_name, True, 0, [ExpectationOutcome(_name(e), _column(e), True, 0, 0) for e in expectations]
        )
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    frame = frame.reset_index(drop=True)
    frame["_row"] = range(len(frame))
    batch = (
        context.data_sources.add_pandas("e2a")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("batch")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=suite_name, expectations=list(expectations))
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"]}
    )
    outcomes: list[ExpectationOutcome] = []
    failing: dict[int, list[str]] = {}
    for item in result.results:
        config = item.expectation_config
        label = config.type + (f"({config.kwargs.get('column')})" if config.kwargs.get("column") else "")
        res = item.result or {}
        failed = int(res.get("unexpected_count") or 0)
        outcomes.append(
            ExpectationOutcome(
                config.type,
                config.kwargs.get("column"),
                bool(item.success),
                int(res.get("element_count") or 0),
                failed,
            )
        )
        if item.exception_info and item.exception_info.get("raised_exception"):
            outcomes[-1].success = False
            label += f" raised: {item.exception_info.get('exception_message')}"
        for entry in res.get("unexpected_index_list") or []:
            row = entry["_row"] if isinstance(entry, dict) else entry
            failing.setdefault(int(row), []).append(label)
    columns = list(sample_columns or [c for c in frame.columns if c != "_row"])
    sample = []
    for row in sorted(failing)[:SAMPLE_ROWS]:
        record = {c: _plain(frame.at[row, c]) for c in columns}
        record["failed"] = ", ".join(failing[row])
        sample.append(record)
    return SuiteOutcome(
        suite_name, bool(result.success) and all(o.success for o in outcomes), len(frame), outcomes, sample
    )


def _name(expectation: Any) -> str:
    return getattr(expectation, "expectation_type", type(expectation).__name__)


def _column(expectation: Any) -> str | None:
    return getattr(expectation, "column", None)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def read_frame(engine: sa.Engine, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(sa.text(sql), params or {})
        return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))


# ----------------------------------------------------------------------------------------------------
# Watermarks of incremental checks


def read_watermark(engine: sa.Engine, check_name: str) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select checked_through from ops.quality_watermarks where check_name = :c"),
            {"c": check_name},
        ).scalar_one_or_none()


def advance_watermark(engine: sa.Engine, check_name: str, checked_through: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                insert into ops.quality_watermarks (check_name, checked_through) values (:c, :t)
                on conflict (check_name) do update
                set checked_through = greatest(ops.quality_watermarks.checked_through, excluded.checked_through),
                    updated_at = now()
                """
            ),
            {"c": check_name, "t": checked_through},
        )


# ----------------------------------------------------------------------------------------------------
# raw.order_events


def order_event_expectations(tenants: Sequence[str]) -> list[Any]:
    _, gxe = _gx()
    required = ("tenant_id", "source", "event_id", "event_type", "order_id", "occurred_at")
    return [
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in required],
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="tenant_id", value_set=sorted(tenants)),
        *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in ("units", "lines", "cartons", "postage")],
        # occurred_at plausibility: not before 2000, not after the ingestion clock (+ skew)
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="occurred_at", column_B="earliest_plausible_at", or_equal=True
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="latest_plausible_at", column_B="occurred_at", or_equal=True
        ),
    ]


ORDER_EVENTS_SQL = """
select tenant_id, source, event_id, event_type, order_id, occurred_at, file_name, line_number,
       cast(units as float8) as units, cast(lines as float8) as lines, cast(cartons as float8) as cartons,
       cast(postage as float8) as postage, ingested_at,
       cast(:earliest as timestamptz) as earliest_plausible_at,
       ingested_at + cast(:skew as interval) as latest_plausible_at
from raw.order_events
where ingested_at > cast(:since as timestamptz)
order by ingested_at desc, tenant_id, source, event_id  -- newest first: the failed-rows sample shows the latest batch
"""


def check_order_events(engine: sa.Engine, tenants: Sequence[str], since: datetime | None) -> SuiteOutcome:
    """Types, required fields, known event types and tenants, non-negative quantities and plausible times of the
    events ingested after ``since`` (minus an overlap; everything when None)."""
    lower = (since - WATERMARK_OVERLAP) if since else datetime(1, 1, 1, tzinfo=UTC)
    frame = read_frame(
        engine,
        ORDER_EVENTS_SQL,
        {
            "since": lower,
            "earliest": EARLIEST_PLAUSIBLE,
            "skew": f"{int(CLOCK_SKEW.total_seconds())} seconds",
        },
    )
    outcome = validate_frame(
        "raw_order_events",
        frame,
        order_event_expectations(tenants),
        ["tenant_id", "source", "event_id"],
        sample_columns=[
            "tenant_id",
            "source",
            "event_id",
            "event_type",
            "order_id",
            "occurred_at",
            "file_name",
            "line_number",
        ],
    )
    outcome.extra["checked_through"] = frame["ingested_at"].max() if not frame.empty else None
    outcome.extra["files"] = sorted({str(f) for f in frame.get("file_name", pd.Series(dtype=str)).dropna()})
    return outcome


VOLUME_SQL = """
with days as (
    -- complete UTC days touched by the events in scope, and yesterday (a missing file shows as a low day)
    select distinct source, cast(occurred_at at time zone 'UTC' as date) as day
    from raw.order_events
    where ingested_at > cast(:since as timestamptz)
      and cast(occurred_at at time zone 'UTC' as date) < cast(:today as date)
      and (cast(:sources as text[]) is null or source = any(cast(:sources as text[])))
    union
    select distinct source, cast(:today as date) - 1
    from raw.order_events
    where occurred_at >= cast(:today as date) - 29
      and (cast(:sources as text[]) is null or source = any(cast(:sources as text[])))
),
daily as (
    select source, cast(occurred_at at time zone 'UTC' as date) as day, count(*) as events
    from raw.order_events
    where source in (select source from days)
      and occurred_at >= (select min(day) from days) - 28
    group by 1, 2
)
select days.source, days.day, coalesce(current.events, 0) as events,
       (select count(*) from daily as prior
        where prior.source = days.source and prior.day in (days.day - 7, days.day - 14, days.day - 21, days.day - 28)
       ) as baseline_days,
       (select percentile_cont(0.5) within group (order by prior.events) from daily as prior
        where prior.source = days.source and prior.day in (days.day - 7, days.day - 14, days.day - 21, days.day - 28)
       ) as baseline_median
from days
left join daily as current on current.source = days.source and current.day = days.day
order by days.source, days.day
"""


def check_event_volume(
    engine: sa.Engine,
    since: datetime | None,
    today: datetime | None = None,
    sources: Sequence[str] | None = None,
) -> SuiteOutcome:
    """Per source and complete UTC day (the days the new events touch, and yesterday): events vs the median of
    the same weekday over the previous four weeks. Fewer than VOLUME_MIN_RATIO × median is a drop. Days without
    a baseline (fewer than VOLUME_MIN_BASELINE_DAYS such weekdays with events) are reported, not judged.
    ``sources`` limits the check to those sources (default: all)."""
    _, gxe = _gx()
    today = (today or clock.now()).astimezone(UTC).date()
    lower = (since - WATERMARK_OVERLAP) if since else datetime(1, 1, 1, tzinfo=UTC)
    frame = read_frame(
        engine, VOLUME_SQL, {"since": lower, "today": today, "sources": list(sources) if sources else None}
    )
    judged = frame[frame["baseline_days"] >= VOLUME_MIN_BASELINE_DAYS].copy() if not frame.empty else frame
    if not judged.empty:
        judged["baseline_median"] = judged["baseline_median"].astype(float)
        judged["volume_ratio"] = judged["events"].astype(float) / judged["baseline_median"]
        judged["day"] = judged["day"].astype(str)
    outcome = validate_frame(
        "raw_order_events_volume",
        judged,
        [gxe.ExpectColumnValuesToBeBetween(column="volume_ratio", min_value=VOLUME_MIN_RATIO)],
        ["source", "day"],
        sample_columns=["source", "day", "events", "baseline_median", "volume_ratio"],
    )
    outcome.extra["days_without_baseline"] = int(len(frame) - len(judged))
    return outcome


# ----------------------------------------------------------------------------------------------------
# marts.fct_sla_evaluations


SLA_EVALUATIONS_SQL = """
select tenant_id, order_id, stage, status, started_at, due_at, ended_at, severity,
       cast(minutes_late as float8) as minutes_late, as_of
from marts.fct_sla_evaluations
"""


def sla_evaluation_expectations() -> list[Any]:
    _, gxe = _gx()
    late = '["late", "overdue"]'
    return [
        gxe.ExpectColumnValuesToBeInSet(column="stage", value_set=list(SLA_STAGES)),
        gxe.ExpectColumnValuesToNotBeNull(column="status"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(SLA_STATUSES)),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="due_at", column_B="started_at", or_equal=True, ignore_row_if="either_value_is_missing"
        ),
        # minutes_late >= 0 exactly when late/overdue, null otherwise; severity likewise
        gxe.ExpectColumnValuesToNotBeNull(
            column="minutes_late", row_condition=f"status in {late}", condition_parser="pandas"
        ),
        gxe.ExpectColumnValuesToBeBetween(column="minutes_late", min_value=0),
        gxe.ExpectColumnValuesToBeNull(
            column="minutes_late", row_condition=f"status not in {late}", condition_parser="pandas"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="severity",
            value_set=list(SEVERITIES),
            row_condition=f"status in {late}",
            condition_parser="pandas",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="severity", row_condition=f"status in {late}", condition_parser="pandas"
        ),
    ]


def check_sla_evaluations(engine: sa.Engine) -> SuiteOutcome:
    """Every row of marts.fct_sla_evaluations: known stage and status, due_at >= started_at, minutes_late >= 0
    and a severity exactly when late/overdue (null otherwise)."""
    frame = read_frame(engine, SLA_EVALUATIONS_SQL)
    return validate_frame(
        "marts_fct_sla_evaluations", frame, sla_evaluation_expectations(), ["tenant_id", "order_id", "stage"]
    )


# ----------------------------------------------------------------------------------------------------
# Invoice guard (issue 5): marts.fct_invoice_reconciliation, actions.invoice_adjustments. Schemas are parameters
# so the suites are tested on scratch tables before those tables exist on this branch.


def reconciliation_expectations() -> list[Any]:
    _, gxe = _gx()
    return [
        *[
            gxe.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("tenant_id", "invoice_id", "charge_code", "discrepancy_type", "delta_amount")
        ],
        gxe.ExpectColumnValuesToBeInSet(column="discrepancy_type", value_set=list(DISCREPANCY_TYPES)),
        # delta_amount = billed - expected (missing side = 0), to the cent
        gxe.ExpectColumnValuesToBeBetween(column="delta_error", min_value=-0.005, max_value=0.005),
    ]


def check_invoice_reconciliation(engine: sa.Engine, schema: str = "marts") -> SuiteOutcome:
    frame = read_frame(
        engine,
        f"""
        select tenant_id, invoice_id, charge_code, order_id, discrepancy_type,
               cast(billed_amount as float8) as billed_amount, cast(expected_amount as float8) as expected_amount,
               cast(delta_amount as float8) as delta_amount,
               cast(delta_amount - (coalesce(billed_amount, 0) - coalesce(expected_amount, 0)) as float8)
                   as delta_error
        from {schema}.fct_invoice_reconciliation
        """,
    )
    return validate_frame(
        "marts_fct_invoice_reconciliation",
        frame,
        reconciliation_expectations(),
        ["tenant_id", "invoice_id", "charge_code", "order_id"],
    )


def check_invoice_adjustments(
    engine: sa.Engine, marts_schema: str = "marts", actions_schema: str = "actions"
) -> SuiteOutcome:
    """Per (tenant, invoice): the open adjustments sum to −Σ delta_amount of the non-matched reconciliation rows,
    one adjustment per non-matched row."""
    _, gxe = _gx()
    frame = read_frame(
        engine,
        f"""
        with recon as (
            select tenant_id, invoice_id, count(*) as non_matched_rows, sum(delta_amount) as delta_total
            from {marts_schema}.fct_invoice_reconciliation
            where discrepancy_type <> 'matched'
            group by 1, 2
        ),
        adjustments as (
            select tenant_id, invoice_id, count(*) as adjustments, sum(amount) as adjustment_total
            from {actions_schema}.invoice_adjustments
            where status = 'open'
            group by 1, 2
        )
        select coalesce(r.tenant_id, a.tenant_id) as tenant_id, coalesce(r.invoice_id, a.invoice_id) as invoice_id,
               coalesce(r.non_matched_rows, 0) as non_matched_rows, coalesce(a.adjustments, 0) as adjustments,
               cast(-coalesce(r.delta_total, 0) as float8) as expected_adjustment_total,
               cast(coalesce(a.adjustment_total, 0) as float8) as adjustment_total,
               cast(coalesce(a.adjustment_total, 0) + coalesce(r.delta_total, 0) as float8) as imbalance,
               coalesce(a.adjustments, 0) - coalesce(r.non_matched_rows, 0) as count_difference
        from recon as r full join adjustments as a on a.tenant_id = r.tenant_id and a.invoice_id = r.invoice_id
        order by 1, 2
        """,
    )
    return validate_frame(
        "actions_invoice_adjustments",
        frame,
        [
            gxe.ExpectColumnValuesToBeBetween(column="imbalance", min_value=-0.005, max_value=0.005),
            gxe.ExpectColumnValuesToBeBetween(column="count_difference", min_value=0, max_value=0),
        ],
        ["tenant_id", "invoice_id"],
    )
