"""Freshness policies (live mode): how stale the raw feeds and the SLA marts may get before the UI flags them.

Applied to the merged definitions in ``definitions.py`` (``dg.map_asset_specs`` over every asset, matched by key),
so they reach the dbt models too. Evaluated by the Dagster daemon when ``freshness: enabled: true`` is in
dagster.yaml (``e2a`` writes it)."""

from datetime import timedelta

import dagster as dg

# Raw feeds: the landing sensor loads new files every 30 s; no new data for an hour in the working day is
# worth a look, six hours is a stopped feed.
RAW_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=6), warn_window=timedelta(hours=1))
# SLA marts: rebuilt at least every 5 minutes (waves, refresh_sla_job); statuses move with time, so 15/30
# minutes is stale.
SLA_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=30), warn_window=timedelta(minutes=15))
# Invoice guard: reconcile_invoices_job runs at 02:00 in every tenant zone, so at least once a day; a
# reconciliation older than 26 hours means the nightly run did not happen (25 hours: a warning).
INVOICE_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=25))

# Continuous feeds only: billing files (raw/invoice_lines) arrive per invoice run, days or weeks apart.
RAW_FEEDS = frozenset({dg.AssetKey(["raw", "order_events"]), dg.AssetKey(["raw", "shopify_orders"])})
SLA_MARTS = frozenset(
    dg.AssetKey(["marts", name]) for name in ("fct_sla_evaluations", "fct_sla_exceptions", "agg_sla_compliance_daily")
)
INVOICE_GUARD = frozenset(
    {dg.AssetKey(["marts", "fct_invoice_reconciliation"]), dg.AssetKey(["actions", "invoice_adjustments"])}
)
POLICIES = {
    **dict.fromkeys(RAW_FEEDS, RAW_FRESHNESS),
    **dict.fromkeys(SLA_MARTS, SLA_FRESHNESS),
    **dict.fromkeys(INVOICE_GUARD, INVOICE_FRESHNESS),
}


def _with_policy(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = POLICIES.get(spec.key)
    return dg.apply_freshness_policy(spec, policy) if policy else spec


def with_freshness(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with the policies above on their assets; everything else as it was (the fields are the ones
    ``Definitions.merge`` carries over)."""
    return dg.Definitions(
        assets=dg.map_asset_specs(_with_policy, defs.assets or []),
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )
