"""When each asset rebuilds on its own (DESIGN §1): named automation conditions, the reason beside each.

The live loop is: a sensor requests one ingestion run per source for everything pending; once it has landed, the
``automation_sensor`` requests one run rebuilding everything downstream of the new data (one run per wave, not
per file); the queue runs SLA-model builds one at a time (``e2a/sla_models`` tag, ``dagster.yaml``). From an
empty ``E2A_HOME`` every asset is built once without anybody clicking.

dbt views read their sources live, so new data never needs them rebuilt: they are (re)created only when missing
or changed, and the conditions of what reads them look through them to the tables underneath. (Dagster's
preview "virtual assets" would say the same, but in 1.13 subsetting the dbt op around the calendar asset then
builds a cyclic execution plan.)"""

import dagster as dg

AC = dg.AutomationCondition

# The raw tables exist as soon as the schema is migrated (lib/core/schema.py), before any ingestion run: an empty
# source (Shopify not configured, no invoice yet) is not a missing dependency. Nor does an ingestion run in
# progress hold a rebuild back: the rebuild reads what is committed and the next wave brings the rest (holding
# back would starve the marts under a steady feed).
RAW = dg.AssetSelection.key_prefixes(["raw"])

# dbt views (E2ADbtTranslator gives them the `view` kind).
VIEWS = dg.AssetSelection.kind("view")

# A dependency updated since the previous tick (outside a run that also built this asset), or requested now.
UPDATED = (
    (AC.newly_updated() & ~AC.executed_with_root_target()).with_label("newly_updated_without_root")
    | AC.will_be_requested()
).with_label("updated")


def deps_updated_through_views(depth: int = 3) -> dg.AutomationCondition:
    """A dependency updated, or a dependency that is a view (up to ``depth`` views deep) over one that did."""
    condition = AC.any_deps_match(UPDATED)
    for _ in range(depth):
        condition = AC.any_deps_match(UPDATED) | AC.any_deps_match(condition).allow(VIEWS)
    return condition.with_label("any_deps_updated_through_views")


# Never materialized, and not because the last attempt failed: the first build from an empty home. A failed
# first build waits for new data (or a click) instead of being retried every tick.
NEVER_BUILT = (AC.missing() & ~AC.execution_failed()).with_label("never_built")

# Upstream data changed since this asset was last requested. Unlike eager(), an update is not forgotten when
# the asset's own in-progress build finishes: data that landed during a build triggers the next one.
NEW_DATA = deps_updated_through_views().since(AC.newly_requested() | AC.initial_evaluation()).with_label("new_data")

# The asset's code (dbt SQL, seed file, Python) changed since it was last built or requested.
CODE_CHANGED = AC.code_version_changed().since_last_handled().with_label("code_changed")

# A raw table whose blocking checks (the GX suite on raw/order_events) passed on its latest ingestion, or that
# was never ingested: a bad batch keeps what reads it from rebuilding until it is fixed (DESIGN §1), as it does
# within one `e2a run`.
RAW_BATCH_PASSED = (AC.missing() | AC.all_checks_match(AC.check_passed(), blocking_only=True)).with_label(
    "raw_batch_passed"
)


def raw_batches_passed_through_views(depth: int = 3) -> dg.AutomationCondition:
    """Every raw dependency, direct or behind views (up to ``depth`` deep), passed its blocking checks."""
    condition = AC.all_deps_match(RAW_BATCH_PASSED).allow(RAW)
    for _ in range(depth):
        condition = AC.all_deps_match(RAW_BATCH_PASSED).allow(RAW) & AC.all_deps_match(condition).allow(VIEWS)
    return condition.with_label("raw_batches_passed")


DEPS_READY = (
    ~AC.any_deps_missing().ignore(RAW)
    & ~AC.any_deps_in_progress().ignore(RAW)
    & ~AC.in_progress()
    & raw_batches_passed_through_views()
).with_label("deps_ready")

# Tables, seeds and Python assets: built once, then again whenever new data or new code reaches them.
LIVE = (AC.in_latest_time_window() & (NEVER_BUILT | NEW_DATA | CODE_CHANGED) & DEPS_READY).with_label("live")

# dbt views: (re)created only when missing or when their SQL changed; new data flows through them.
VIEW = (
    AC.in_latest_time_window() & (NEVER_BUILT | CODE_CHANGED) & ~AC.any_deps_missing().ignore(RAW) & ~AC.in_progress()
).with_label("view")

# Actions on SLA figures (notifications): live, but never on figures a blocking check rejected (in this run or
# the upstream one).
LIVE_AFTER_CHECKS = (LIVE & AC.all_deps_blocking_checks_passed()).with_label("live_after_checks")

# A daily page (the radar report): at 06:00 once the day's SLA figures are in, and once right away on a fresh
# home; never from figures a blocking check rejected.
DAILY_AFTER_CHECKS = (
    (AC.on_cron("0 6 * * *") | (NEVER_BUILT & DEPS_READY)) & AC.all_deps_blocking_checks_passed()
).with_label("daily_after_checks")

# For checks computed by their asset's own step (``check_specs``): requested exactly when the asset is. Without
# a condition of their own, Dagster 1.13 adds them to an automation run as the asset's execution set and then
# selects only them, leaving out every other asset's checks (dbt tests, GX suites) in that run.
WITH_ITS_ASSET = AC.any_deps_match(AC.will_be_requested()).with_label("with_its_asset")

# What a batch of landing events sets off, built in the ingestion run itself (``ingest_landing_events_job``):
# everything downstream of raw.order_events that rebuilds on new data (the SLA models, KPIs, narratives,
# notifications), not the views (nothing to rebuild), not the invoice guard's models (``reconcile_invoices_job``
# chooses their days) and not the daily radar page. One run per wave, one process and one dbt command fewer
# than a separate automation run: the automation sensor sees them built with their root and asks for nothing.
# The blocking checks on raw.order_events gate them within the run, as they gate a wave between runs.
EVENTS_WAVE = (
    dg.AssetSelection.assets(["raw", "order_events"]).downstream()
    - VIEWS
    - dg.AssetSelection.assets(["intermediate", "int_billable_activities_metered"]).downstream()
    - dg.AssetSelection.assets(["reports", "sla_radar"])
)

# The run tag of every build of the live-incremental SLA models; the run queue runs one at a time (their
# `built_at` change marker needs it) and coalesces the rest.
SLA_BUILD_TAG = "e2a/sla_models"
SLA_BUILD_TAGS = {SLA_BUILD_TAG: "build"}
