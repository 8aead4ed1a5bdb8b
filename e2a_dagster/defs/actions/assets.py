"""Notifications (``actions/notifications``) and the daily SLA radar report (``reports/sla_radar``)."""

from datetime import date

import dagster as dg

from e2a_dagster.defs.automation import DAILY_AFTER_CHECKS, LIVE_AFTER_CHECKS
from e2a_dagster.defs.resources import Database, Notifier
from e2a_dagster.lib.actions import notify, report
from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.settings import load_settings

SLA_EVALUATIONS = dg.AssetKey(["marts", "fct_sla_evaluations"])
SLA_EXCEPTIONS = dg.AssetKey(["marts", "fct_sla_exceptions"])
SLA_COMPLIANCE = dg.AssetKey(["marts", "agg_sla_compliance_daily"])


@dg.asset(
    key=["actions", "notifications"],
    # fct_sla_evaluations directly: its blocking check must gate this asset in the same run. Not the adjustments:
    # they are built nightly (or never, for a tenant without invoices) and would hold SLA notifications back;
    # adjustments needing review are picked up from actions.invoice_adjustments whenever it has rows.
    deps=[SLA_EXCEPTIONS, SLA_EVALUATIONS],
    group_name="actions",
    kinds={"python", "postgres", "slack"},
    automation_condition=LIVE_AFTER_CHECKS,
    description="One row per (kind, subject) in actions.notifications: newly overdue critical SLA exceptions "
    "and invoice adjustments needing review, posted once to E2A_NOTIFY_WEBHOOK_URL "
    "(Slack-compatible). Off without a URL: rows are recorded as skipped, nothing is sent.",
)
def notifications(context: dg.AssetExecutionContext, database: Database, notifier: Notifier) -> dg.MaterializeResult:
    engine = database.engine
    enabled = notifier.url is not None
    created = notify.record_notifications(engine, enabled=enabled)
    delivery = notify.DeliveryReport()
    if enabled:
        delivery = notify.deliver_pending(
            engine, notifier.client(), max_per_run=notifier.max_per_run, max_attempts=notifier.max_attempts
        )
        for error in delivery.errors:
            context.log.warning(f"notification delivery failed: {error}")
    else:
        context.log.info("notifications are off (no E2A_NOTIFY_WEBHOOK_URL): new rows recorded as skipped")
    counts = notify.status_counts(engine)
    return dg.MaterializeResult(
        metadata={
            "enabled": enabled,
            "new": sum(created.values()),
            **{f"new_{kind}": n for kind, n in created.items()},
            "sent_this_run": delivery.sent,
            "failed_this_run": delivery.failed,
            **{f"total_{status}": n for status, n in counts.items()},
            "dagster/row_count": sum(counts.values()),
        }
    )


class RadarConfig(dg.Config):
    report_date: str | None = None
    """Day the report describes (YYYY-MM-DD); empty = today (local time of the code location)."""


@dg.asset(
    key=["reports", "sla_radar"],
    deps=[SLA_COMPLIANCE, SLA_EXCEPTIONS, SLA_EVALUATIONS],
    group_name="actions",
    kinds={"python", "html"},
    automation_condition=DAILY_AFTER_CHECKS,
    description="Daily SLA radar page under E2A_HOME/reports/: compliance trend (inline SVG), open exceptions "
    "with their narratives, money at stake from the invoice adjustments.",
)
def sla_radar(context: dg.AssetExecutionContext, config: RadarConfig, database: Database) -> dg.MaterializeResult:
    now = clock.now().astimezone()
    report_date = date.fromisoformat(config.report_date) if config.report_date else now.date()
    data = report.collect_radar(database.engine, report_date, now)
    path = report.write_radar(report.render_radar(data), load_settings().home / "reports", report_date)
    context.log.info(f"SLA radar written to {path}")
    latest = next((p.compliance_pct for p in reversed(data.trend) if p.compliance_pct is not None), None)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "url": dg.MetadataValue.url(path.as_uri()),
            "report_date": report_date.isoformat(),
            "open_exceptions": data.open_exception_count,
            "latest_compliance_pct": latest,
            "money_data": data.money is not None,
        }
    )
