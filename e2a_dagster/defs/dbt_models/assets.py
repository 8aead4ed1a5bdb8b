"""The dbt project as Dagster assets; dbt tests become asset checks."""

import functools
import json
from collections.abc import Iterator

import dagster as dg
from dagster_dbt import dbt_assets

from e2a_dagster.defs.dbt_models.translator import E2ADbtTranslator
from e2a_dagster.defs.resources import Database, DbtCli, dbt_project
from e2a_dagster.lib.core.dbt import PRODUCT_BUILD_EXCLUDES, prune_run_targets, run_target
from e2a_dagster.lib.invoicing.invoice_metrics import METRICS_BY_MODEL as INVOICE_METRICS
from e2a_dagster.lib.sla.sla_metrics import METRICS_BY_MODEL

# Where dagster-dbt keeps the dbt unique id of the test behind an asset check (check spec metadata).
DBT_UNIQUE_ID = "dagster_dbt/unique_id"
# A subset build (seeds only, SLA models only) runs the tests whose parents are all built or upstream, not tests
# on models downstream that may not exist yet; the tests of this step's checks are named explicitly. dagster-dbt
# sets the variable itself when the step's check selection needs it, and that wins (defs/resources.py DbtCli.cli).
SUBSET_BUILD_ENV = {"DBT_INDIRECT_SELECTION": "buildable"}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # The daily-partitioned billable activity is its own asset (defs/invoicing/billable_activity.py).
    exclude="tag:billable_daily",
    dagster_dbt_translator=E2ADbtTranslator(),
)
def e2a_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCli, database: Database):
    _ = database.engine  # the schema is brought up to date before dbt builds on it
    # Always live: as_of = E2A_NOW or the build's start (macros/as_of_timestamp.sql). A past instant is a backtest,
    # which never runs here (lib/core/backtest.py: its own schemas, no materialization of these assets).
    args = ["build", *selected_tests_args(context)]
    events = stream_dbt(dbt, args, context, env=SUBSET_BUILD_ENV)
    yield from reported_at_the_end(with_model_metrics(context, e, database) for e in events)


def reported_at_the_end(events: Iterator) -> Iterator:
    """The step's events once dbt is done (the rows are in the database as each model finishes). Until then
    every model of the step is in progress for the automation conditions, so new data landing meanwhile is
    rebuilt by one run after this one, not by a run per model already finished here (defs/automation.py)."""
    done = []
    try:
        done.extend(events)
    except BaseException:
        yield from done  # what did build still counts
        raise
    yield from done


@functools.cache
def _manifest_nodes() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())["nodes"]


def selected_tests_args(context: dg.AssetExecutionContext) -> list[str]:
    """``--select`` for the dbt tests behind this step's selected asset checks (unioned with dagster-dbt's own
    selection). Indirect selection skips a test with a parent outside the step (a relationship to a seed
    that is not rebuilt), yet a blocking check must report in every run that builds its asset: otherwise
    it has no result and holds back whatever waits for it to pass."""
    names = []
    for key in context.selected_asset_check_keys:
        unique_id = (context.assets_def.get_spec_for_check_key(key).metadata or {}).get(DBT_UNIQUE_ID)
        node = _manifest_nodes().get(unique_id) if unique_id else None
        if node is not None:
            names.append(".".join(node["fqn"]))
    return ["--select", " ".join(sorted(names))] if names else []


def stream_dbt(
    dbt: DbtCli, args: list[str], context: dg.AssetExecutionContext, env: dict[str, str] | None = None
) -> Iterator:
    """The events of one dbt command of this step, run in a target folder of its own under
    ``E2A_HOME/dbt-targets`` (the newest few are kept to look at; never the shared ``dbt_project/target``).
    A build leaves the dbt unit tests out (``PRODUCT_BUILD_EXCLUDES``). ``env``: more variables for dbt."""
    root = dbt.targets_root()
    target = run_target(root, f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}")
    if args[:1] == ["build"]:
        args = [*args, *PRODUCT_BUILD_EXCLUDES]
    try:
        yield from dbt.cli(args, context=context, target_path=target, env=env).stream()
    finally:
        prune_run_targets(root)


def with_model_metrics(context: dg.AssetExecutionContext, event, database: Database):
    """Add the SLA figures (counts by status and severity) and the invoice money totals to the marts'
    materializations."""
    if not isinstance(event, dg.Output):
        return event
    key = context.asset_key_for_output(event.output_name)
    metrics = METRICS_BY_MODEL.get(key.path[-1]) or INVOICE_METRICS.get(key.path[-1])
    if metrics is None:
        return event
    return event.with_metadata({**event.metadata, **metrics(database.engine)})
