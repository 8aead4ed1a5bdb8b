"""The explanations assets materialized through Dagster, and lint scenarios executed through dbt in scratch
schemas."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa

from e2a_dagster.defs.explanations.assets import exception_narratives, policy_lint
from e2a_dagster.defs.resources import LLM, Database
from e2a_dagster.lib.quality.lint_ai import Scenario, run_scenarios
from tests.explain_fixtures import add_exception, create_marts, drop_schema
from tests.fake_llm import FakeLLM, good_answer


def test_narratives_asset_materializes_with_metadata(engine, pg_info, uid, monkeypatch):
    schema = f"x_{uid}"
    create_marts(engine, schema)
    try:
        for n, severity in (("1", "major"), ("2", "critical")):
            add_exception(
                engine,
                schema,
                exception_id=f"e{uid}-{n}",
                order_id=f"A{uid}-{n}",
                stage="pick",
                status="late",
                severity=severity,
                started_at="2026-03-03T09:05:00-05:00",
                due_at="2026-03-03T11:05:00-05:00",
                ended_at="2026-03-03T12:40:00-05:00",
                minutes_late=95,
            )
        run_config = {"ops": {"actions__exception_narratives": {"config": {"marts_schema": schema}}}}
        with FakeLLM(default=good_answer) as fake:
            monkeypatch.setenv("E2A_LLM_BASE_URL", fake.url)
            monkeypatch.setenv("E2A_LLM_MODEL", f"fake-{uid}")
            monkeypatch.setenv("E2A_LLM_PRICE_INPUT_PER_1M", "1.00")
            monkeypatch.setenv("E2A_LLM_PRICE_OUTPUT_PER_1M", "2.00")
            result = dg.materialize(
                [exception_narratives],
                resources={"database": Database(), "llm": LLM()},
                run_config=run_config,
            )
        assert result.success
        meta = result.asset_materializations_for_node("actions__exception_narratives")[0].metadata
        assert (meta["written"].value, meta["llm_narratives"].value, meta["tokens"].value) == (2, 2, 400)
        assert meta["cost_estimate"].value == pytest.approx(0.00056)  # 2 × (120 × 1.00 + 80 × 2.00) / 1e6
        assert meta["by_status"].value == {"ok": 2}
    finally:
        drop_schema(engine, schema)


def test_narratives_asset_without_sla_marts_is_a_quiet_no_op(engine, pg_info):
    run_config = {"ops": {"actions__exception_narratives": {"config": {"marts_schema": "no_such_schema"}}}}
    result = dg.materialize(
        [exception_narratives], resources={"database": Database(), "llm": LLM()}, run_config=run_config
    )
    meta = result.asset_materializations_for_node("actions__exception_narratives")[0].metadata
    assert result.success and meta["exceptions"].value == 0


def test_policy_lint_asset_checks_pass_on_the_shipped_seeds():
    result = dg.materialize([policy_lint])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"reference_data_has_no_lint_errors": True, "reference_data_has_no_lint_warnings": True}


def test_scenarios_run_through_dbt_in_scratch_schemas(engine, pg_info, dbt_manifest):
    """The executor runs ``dbt build --select +<model>`` into ``scn_<id>_*`` schemas. On a branch without
    the SLA
    engine it is exercised with ``fct_orders`` (milestones instead of statuses); the real marts stay
    untouched."""
    manifest = json.loads(dbt_manifest.read_text())
    has_sla = any(n.get("name") == "fct_sla_evaluations" for n in manifest["nodes"].values())
    scenario = Scenario(
        name="paid 09:05, picked 10:10",
        tenant_id="acme",
        warehouse_id="NJ1",
        carrier="ups",
        service_level="ground",
        as_of="2026-03-02T18:00:00-05:00",
        events=[
            {"event_type": "order_created", "occurred_at": "2026-03-02T09:00:00-05:00"},
            {"event_type": "order_paid", "occurred_at": "2026-03-02T09:05:00-05:00"},
            {"event_type": "pick_completed", "occurred_at": "2026-03-02T10:10:00-05:00"},
            {"event_type": "pack_completed", "occurred_at": "2026-03-02T19:30:00-05:00"},
        ],  # after as_of
        expected={"pick": "met", "pack": "overdue"} if has_sla else {},
    )
    bad = Scenario(
        name="naive timestamp",
        tenant_id="acme",
        as_of="2026-03-02T18:00:00-05:00",
        events=[{"event_type": "order_paid", "occurred_at": "2026-03-02T09:05:00"}],
        expected={},
    )
    if has_sla:
        # 120 business minutes from 09:05 → due 11:05: picked 10:10 is met; pack (180 min from 10:10 → due
        # 13:10) has not happened by 18:00 → overdue.
        naive_as_of = Scenario(
            name="naive as_of", tenant_id="acme", as_of="2026-03-02T18:00:00", events=[], expected={}
        )
        nothing = Scenario(
            name="no events", tenant_id="acme", as_of="2026-03-02T18:00:00-05:00", events=[], expected={}
        )
        results = run_scenarios(engine, pg_info, [scenario, bad, naive_as_of, nothing])
        assert [r.verdict for r in results] == ["agrees", "invalid", "invalid", "agrees"], results
        assert "as_of '2026-03-02T18:00:00' needs a UTC offset" in results[2].message
        # The scratch build kept its artifacts apart: the project's manifest still names the real schemas.
        after = json.loads(dbt_manifest.read_text())["nodes"]["model.e2a.fct_sla_evaluations"]
        assert after["schema"] == "marts"
        return
    results = run_scenarios(engine, pg_info, [scenario, bad], model="fct_orders", keep_schemas=True)
    prefix = results[0].order_id.split("-")[1]
    try:
        assert [r.verdict for r in results] == ["agrees", "invalid"], results
        assert "occurred_at" in results[1].message
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    f"select paid_at, pick_completed_at, pack_completed_at from "
                    f"scn_{prefix}_marts.fct_orders where order_id = :o"
                ),
                {"o": results[0].order_id},
            ).one()
            real = conn.execute(sa.text("select to_regclass('marts.fct_orders') is not null")).scalar()
            in_real_marts = (
                real
                and conn.execute(
                    sa.text("select exists (select 1 from marts.fct_orders where order_id like 'SCN-%')")
                ).scalar()
            )
        assert row.paid_at.isoformat() == "2026-03-02T14:05:00+00:00"
        assert row.pick_completed_at.isoformat() == "2026-03-02T15:10:00+00:00"
        assert row.pack_completed_at is None  # after as_of: not known yet
        assert not in_real_marts
    finally:
        with engine.begin() as conn:
            for name in ("raw", "reference", "staging", "intermediate", "marts"):
                conn.execute(sa.text(f"drop schema if exists scn_{prefix}_{name} cascade"))
