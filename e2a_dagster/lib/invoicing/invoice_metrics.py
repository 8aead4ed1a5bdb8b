"""Money figures about the invoice marts for Dagster materialization metadata (plotted over time in the UI).

Totals are per currency (never summed across currencies): ``<figure>_<currency>``, e.g. ``billed_USD``."""

from __future__ import annotations

import sqlalchemy as sa

from e2a_dagster.lib.core.vocabulary import DISCREPANCY_TYPES


def _float(value) -> float:
    return float(value or 0)


def expected_metrics(engine: sa.Engine) -> dict[str, float | int]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            """
            select currency, count(*),
                   sum(amount) filter (where charge_code <> 'SLA_CREDIT'),
                   sum(amount) filter (where charge_code = 'SLA_CREDIT')
            from marts.fct_expected_charges group by currency order by currency
            """
        ).all()
    metrics: dict[str, float | int] = {"dagster/row_count": sum(r[1] for r in rows)}
    for currency, _, charges, credits in rows:
        metrics[f"expected_charges_{currency}"] = _float(charges)
        metrics[f"sla_credits_{currency}"] = _float(credits)
    return metrics


def reconciliation_metrics(engine: sa.Engine) -> dict[str, float | int]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            """
            select currency, sum(billed_amount), sum(expected_amount), sum(delta_amount),
                   sum(expected_amount) filter (where charge_code = 'SLA_CREDIT'), count(*)
            from marts.fct_invoice_reconciliation group by currency order by currency
            """
        ).all()
        by_type = dict(
            conn.exec_driver_sql(
                "select discrepancy_type, count(*) from marts.fct_invoice_reconciliation group by 1"
            ).all()
        )
        # every invoice and credit note reconciled: those the rows name and those that billed a row
        invoices = conn.exec_driver_sql(
            """
            select count(distinct invoice) from (
                select invoice_id as invoice from marts.fct_invoice_reconciliation
                union all
                select jsonb_array_elements_text(billed_invoice_ids) from marts.fct_invoice_reconciliation
            ) as named
            """
        ).scalar_one()
    metrics: dict[str, float | int] = {"dagster/row_count": sum(r[5] for r in rows), "invoices": invoices}
    for currency, billed, expected, delta, credits, _ in rows:
        metrics[f"billed_{currency}"] = _float(billed)
        metrics[f"expected_{currency}"] = _float(expected)
        metrics[f"delta_{currency}"] = _float(delta)
        metrics[f"expected_sla_credits_{currency}"] = _float(credits)
    for kind in DISCREPANCY_TYPES:
        metrics[f"rows_{kind}"] = int(by_type.get(kind, 0))
    return metrics


METRICS_BY_MODEL = {
    "fct_expected_charges": expected_metrics,
    "fct_invoice_reconciliation": reconciliation_metrics,
}
