"""Figures about the SLA marts for Dagster materialization metadata (plotted over time in the UI)."""

from __future__ import annotations

import sqlalchemy as sa

from e2a_dagster.lib.core.vocabulary import EXCEPTION_STATUSES, SEVERITIES
from e2a_dagster.lib.core.vocabulary import SLA_STATUSES as STATUSES


def _counts(conn: sa.Connection, sql: str) -> dict[str, int]:
    return {str(key): int(n) for key, n in conn.exec_driver_sql(sql).all() if key is not None}


def evaluation_metrics(engine: sa.Engine) -> dict[str, int | float | None]:
    """Counts of marts.fct_sla_evaluations by status and by severity (late + overdue)."""
    with engine.connect() as conn:
        by_status = _counts(conn, "select status, count(*) from marts.fct_sla_evaluations group by status")
        by_severity = _counts(
            conn, "select severity, count(*) from marts.fct_sla_evaluations where severity is not null group by 1"
        )
    metrics: dict[str, int | float | None] = {f"status_{s}": by_status.get(s, 0) for s in STATUSES}
    metrics.update({f"severity_{s}": by_severity.get(s, 0) for s in SEVERITIES})
    metrics["dagster/row_count"] = sum(by_status.values())
    return metrics


def compliance_metrics(engine: sa.Engine) -> dict[str, int | float | None]:
    """The SLA compliance over every row of marts.agg_sla_compliance_daily: its counts summed (the documented
    roll-up) and their ratio. What counts as due and met is the mart's (macros/sla_compliance_counts.sql), not
    restated here; nothing due yet -> no compliance figure (not 100 %, not 0 %)."""
    with engine.connect() as conn:
        due, met = conn.exec_driver_sql(
            "select coalesce(sum(due_count), 0), coalesce(sum(met_count), 0) from marts.agg_sla_compliance_daily"
        ).one()
    return {
        "due_count": int(due),
        "met_count": int(met),
        "compliance_pct": round(100.0 * int(met) / int(due), 2) if due else None,
    }


def exception_metrics(engine: sa.Engine) -> dict[str, int]:
    """Counts of marts.fct_sla_exceptions by status and, for open ones, by severity."""
    with engine.connect() as conn:
        by_status = _counts(conn, "select status, count(*) from marts.fct_sla_exceptions group by status")
        open_by_severity = _counts(
            conn,
            "select severity, count(*) from marts.fct_sla_exceptions where status = 'open' group by severity",
        )
    metrics = {f"status_{s}": by_status.get(s, 0) for s in EXCEPTION_STATUSES}
    metrics.update({f"open_{s}": open_by_severity.get(s, 0) for s in SEVERITIES})
    metrics["dagster/row_count"] = sum(by_status.values())
    return metrics


METRICS_BY_MODEL = {
    "fct_sla_evaluations": evaluation_metrics,
    "fct_sla_exceptions": exception_metrics,
    "agg_sla_compliance_daily": compliance_metrics,
}
