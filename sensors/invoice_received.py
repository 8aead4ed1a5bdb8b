"""``invoice_received_sensor``: an invoiced period with stale days (a new invoice, or a late event for an
invoiced period) → one ``reconcile_invoices_job`` run over those days, without waiting for 02:00."""

from __future__ import annotations

import hashlib

import dagster as dg

from e2a_dagster.defs.invoicing.schedules import last_billing_day, reconcile_invoices_job, run_request
from e2a_dagster.defs.resources import Database
from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.database import missing_relations
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.invoicing.billing_periods import first_billing_day, plan_refresh, stale_days


@dg.sensor(
    name="invoice_received_sensor",
    job=reconcile_invoices_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reconciles an invoice as soon as it is loaded: rebuilds the stale days of every invoiced "
    "period (never refreshed, refreshed before the invoice arrived, or holding orders changed since).",
)
def invoice_received_sensor(context: dg.SensorEvaluationContext, database: Database):
    engine = database.engine
    missing = missing_relations(engine, ["marts.fct_orders", "marts.fct_sla_evaluations"])
    if missing:
        return dg.SkipReason(f"waiting for the SLA models to be built once ({', '.join(missing)})")
    tenants = sorted(Reference.load().tenants)
    first, last = first_billing_day(), last_billing_day(clock.now())
    stale = stale_days(engine, tenants, first_day=first, last_day=last)
    plan = plan_refresh([s.tenant_id for s in stale], stale, yesterday=None, first_day=first, last_day=last)
    if plan is None:
        return dg.SkipReason("every invoiced day is up to date")
    # The same staleness asks once: a run that fails is retried by the 02:00 schedule, or by new data.
    signature = "|".join(s.signature() for s in stale)
    key = "invoices:" + hashlib.sha256(signature.encode()).hexdigest()[:16]
    context.log.info(f"stale invoiced days: {plan.reasons}")
    return run_request(plan, run_key=key, origin="invoice_received_sensor")
