"""Invoice guard wiring in the code location: the daily partitions, the nightly job, its schedules and sensor."""

import os
import subprocess
import sys

import dagster as dg

from e2a_dagster.lib.core.settings import PROJECT_ROOT

ACTIVITY = dg.AssetKey(["intermediate", "int_billable_activities_metered"])


def test_billable_activity_is_daily_partitioned_with_single_run_backfills(definitions):
    node = definitions.resolve_asset_graph().get(ACTIVITY)
    assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
    # E2A_BILLING_START (tests/conftest.py sets it for the session; its default is unit-tested in
    # test_billing_periods.py)
    assert node.partitions_def.start.date().isoformat() == "2026-07-01"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.automation_condition is None  # the job chooses the days


def test_the_order_charges_view_is_built_with_the_billable_activity(definitions):
    # One asset definition: every build of the metered model through Dagster (re)creates the view it reads, so
    # the stale-day check (lib/invoicing/billing_periods.py), which reads it too, finds it wherever the metered
    # rows are.
    charges = dg.AssetKey(["intermediate", "int_billable_order_charges"])
    assert {ACTIVITY, charges} <= set(definitions.resolve_assets_def(ACTIVITY).keys)
    node = definitions.resolve_asset_graph().get(charges)
    assert node.group_name == "finance" and node.automation_condition is None
    assert charges in definitions.resolve_asset_graph().get(ACTIVITY).parent_keys


def test_monthly_invoice_models_follow_the_job_not_eager_automation(definitions):
    graph = definitions.resolve_asset_graph()
    for name in (
        "int_billable_activities_priced",
        "int_billing_periods_classified",
        "int_monthly_minimums_charged",
        "int_sla_credits_capped",
        "fct_expected_charges",
        "fct_invoice_reconciliation",
    ):
        key = next(k for k in graph.get_all_asset_keys() if k.path[-1] == name)
        assert graph.get(key).automation_condition is None, name
        assert graph.get(key).partitions_def is None, name
    # the rest of the models stay eager
    assert graph.get(dg.AssetKey(["marts", "fct_orders"])).automation_condition is not None


def test_nightly_job_covers_ingestion_activity_reconciliation_and_adjustments(definitions):
    job = definitions.resolve_job_def("reconcile_invoices_job")
    keys = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {
        "raw/invoice_lines",
        "intermediate/int_billable_activities_metered",
        "intermediate/int_billable_activities_priced",
        "marts/fct_expected_charges",
        "marts/fct_invoice_reconciliation",
        "actions/invoice_adjustments",
    } <= keys
    assert "marts/fct_orders" not in keys  # the SLA refresh owns it
    assert job.partitions_def is not None and job.tags["e2a/invoice_guard"] == "true"


def test_one_0200_schedule_per_tenant_time_zone_and_the_invoice_sensor(definitions):
    from e2a_dagster.defs.invoicing.schedules import schedule_name

    for zone in ("America/New_York", "Europe/Berlin"):
        schedule = definitions.resolve_schedule_def(schedule_name(zone))
        assert schedule.cron_schedule == "0 2 * * *"
        assert schedule.execution_timezone == zone
        assert schedule.job_name == "reconcile_invoices_job"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    sensor = definitions.resolve_sensor_def("invoice_received_sensor")
    assert sensor.job_name == "reconcile_invoices_job"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )


def test_billing_start_is_read_when_the_code_location_loads_never_at_import(dbt_manifest):
    """Importing every module of defs/ reads no E2A_BILLING_START (a value no one could parse does no harm);
    loading the code location reads it, for the billable activity's partitions."""
    imports = (
        "import importlib, pkgutil, e2a_dagster.defs as d; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(d.__path__, 'e2a_dagster.defs.')]; "
        "print('imported')"
    )
    imported = _python(imports, E2A_BILLING_START="February")
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert imported.stdout.strip().splitlines()[-1] == "imported"
    load = (
        "import dagster as dg, e2a_dagster.definitions as d; "
        "key = dg.AssetKey(['intermediate', 'int_billable_activities_metered']); "
        "print(d.defs().resolve_assets_def(key).partitions_def.start.date())"
    )
    loaded = _python(load, E2A_BILLING_START="2026-02-01")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().splitlines()[-1] == "2026-02-01"
