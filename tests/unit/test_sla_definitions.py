"""SLA wiring in the code location: refresh job, 5-minute schedule, calendar between seeds and models."""

import dagster as dg


def test_refresh_schedule_looks_every_minute_for_statuses_older_than_four_minutes(definitions):
    from e2a_dagster.defs.sla.schedules import FRESH_FOR

    schedule = definitions.resolve_schedule_def("sla_refresh_schedule")
    # every minute, a build when none started in the last 4: no status older than 5 minutes
    assert schedule.cron_schedule == "* * * * *" and FRESH_FOR.total_seconds() == 4 * 60
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = definitions.resolve_job_def("refresh_sla_job")
    keys = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {
        "marts/fct_sla_evaluations",
        "marts/fct_sla_exceptions",
        "marts/agg_sla_compliance_daily",
        "intermediate/int_order_stages_scheduled",
        "intermediate/int_orders_milestoned",
    } <= keys
    assert not any(key.startswith("reference/") and key != "reference/warehouse_calendar" for key in keys)


def test_calendar_sits_between_the_seeds_and_the_models(definitions):
    graph = definitions.resolve_asset_graph()
    calendar = dg.AssetKey(["reference", "warehouse_calendar"])
    seeds = {dg.AssetKey(["reference", "warehouses"]), dg.AssetKey(["reference", "calendar_exceptions"])}
    assert seeds <= set(graph.get(calendar).parent_keys)
    assert dg.AssetKey(["staging", "stg_calendar__warehouse_days"]) in graph.get(calendar).child_keys
    assert graph.get(calendar).automation_condition is not None
    # the global job splits the dbt op around the calendar
    nodes = [n.name for n in definitions.resolve_implicit_global_asset_job_def().graph.nodes]
    assert "reference__warehouse_calendar" in nodes
    assert sum(n.startswith("e2a_dbt_models") for n in nodes) >= 2
