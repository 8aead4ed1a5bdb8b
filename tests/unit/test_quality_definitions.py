"""The quality wiring as the code location exposes it: checks, blocking flags, freshness, action assets."""

from datetime import timedelta

import dagster as dg
import pytest


@pytest.fixture(scope="module")
def graph(definitions):
    return definitions.resolve_asset_graph()


def test_checks_are_bound_and_blocking_where_numbers_flow_downstream(graph):
    checks = {
        key.to_user_string(): graph.get_check_spec(key).blocking
        for key in graph.asset_check_keys
        if key.name
        in ("order_events_are_well_formed", "order_event_volume_is_steady", "sla_evaluations_are_consistent")
    }
    assert checks == {
        "raw/order_events:order_events_are_well_formed": True,
        "raw/order_events:order_event_volume_is_steady": False,
        "marts/fct_sla_evaluations:sla_evaluations_are_consistent": True,
    }


def test_freshness_policies(graph):
    def windows(*path):
        policy = graph.get(dg.AssetKey(list(path))).freshness_policy
        return (policy.fail_window.to_timedelta(), policy.warn_window.to_timedelta()) if policy else None

    assert windows("raw", "order_events") == (timedelta(hours=6), timedelta(hours=1))
    for mart in ("fct_sla_evaluations", "fct_sla_exceptions", "agg_sla_compliance_daily"):
        assert windows("marts", mart) == (timedelta(minutes=30), timedelta(minutes=15))
    assert windows("marts", "fct_orders") is None
    for key in (("marts", "fct_invoice_reconciliation"), ("actions", "invoice_adjustments")):
        assert windows(*key) == (timedelta(hours=26), timedelta(hours=25))


def test_actions_depend_on_the_checked_mart(graph):
    evaluations = dg.AssetKey(["marts", "fct_sla_evaluations"])
    for key in (dg.AssetKey(["actions", "notifications"]), dg.AssetKey(["reports", "sla_radar"])):
        assert evaluations in graph.get(key).parent_keys
    kpis = {k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).group_name == "kpis"}
    assert kpis == {
        "agg_sla_compliance_by_dimensions_daily",
        "agg_order_cycle_times_daily",
        "agg_billing_monthly",
        "agg_order_cycle_times_weekly",
        "agg_sla_exceptions_daily",
    }
