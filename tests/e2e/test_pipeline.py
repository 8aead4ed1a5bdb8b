"""The whole code location, materialized in-process against the real database: ingestion → dbt → marts."""

from __future__ import annotations

import datetime as dt
import subprocess

import dagster as dg
import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core.settings import PROJECT_ROOT, load_settings
from e2a_dagster.lib.quality import suites as quality
from tests.helpers import order_timeline, write_jsonl

UTC = dt.UTC


@pytest.fixture(scope="module")
def pipeline(definitions, engine, tmp_path_factory):
    """Two hand-written orders dropped in the landing zone, then one run of every asset.

    The raw event checks judge what was ingested since their last passing run. Other modules share this
    database (the invoice tests load orders dated 2031, which the plausibility check rightly flags): the
    checks start at this module's files, as if a passing run had just checked everything before them, so
    the outcome does not depend on which tests ran first."""
    with engine.connect() as conn:
        db_now = conn.execute(sa.text("select clock_timestamp()")).scalar_one()
    quality.advance_watermark(
        engine, "order_events_are_well_formed", db_now + quality.WATERMARK_OVERLAP - dt.timedelta(milliseconds=1)
    )
    events_dir = load_settings().events_dir
    events_dir.mkdir(parents=True, exist_ok=True)
    acme = order_timeline("E2E-ACME-1")
    globex = order_timeline("E2E-GLOBEX-1", tenant="globex", warehouse="BER1", offset="+01:00")
    cancelled = [
        {
            "event_id": "E2E-C-1-created",
            "tenant_id": "acme",
            "source": "oms",
            "event_type": "order_created",
            "order_id": "E2E-CANCEL-1",
            "occurred_at": "2026-03-03T09:00:00-05:00",
            "units": 2,
        },
        {
            "event_id": "E2E-C-1-cancel",
            "tenant_id": "acme",
            "source": "oms",
            "event_type": "order_cancelled",
            "order_id": "E2E-CANCEL-1",
            "occurred_at": "2026-03-03T09:30:00-05:00",
        },
    ]
    write_jsonl(events_dir / "e2e-1.jsonl", acme + cancelled)
    write_jsonl(events_dir / "e2e-2.jsonl", list(reversed(globex)) + acme[:3] + ['{"not": "an event"}'])
    from e2a_dagster.cli import configured_assets, every_billing_day

    job = definitions.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=configured_assets(definitions),
            tags=every_billing_day(),  # what `e2a run` does: every daily billing partition
        )
    return result


def test_run_succeeds_and_every_check_passes(pipeline):
    assert pipeline.success
    checks = [e.event_specific_data for e in pipeline.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(checks) > 50
    failed = [c for c in checks if not c.passed]
    assert [c.check_name for c in failed if c.severity == dg.AssetCheckSeverity.ERROR] == []
    # A warn-level check counts over the whole shared database: test_sla_engine's early_pickup order (handed to
    # the carrier before it was paid) is such a stage by design when that module ran first.
    assert {c.check_name for c in failed} <= {"fct_sla_evaluations_milestone_not_before_stage_start"}
    materialized = {
        tuple(e.asset_key.path) for e in pipeline.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    assert {("raw", "order_events"), ("marts", "fct_orders"), ("reference", "tenants")} <= materialized


def test_ingestion_metadata(pipeline):
    mats = pipeline.asset_materializations_for_node("raw__order_events")
    meta = mats[0].metadata
    assert meta["files"].value == 2
    assert meta["events_loaded"].value == 9 + 2 + 9
    assert meta["duplicates"].value == 3
    assert meta["rejected"].value == 1
    assert meta["rejected_by_code"].value == {"missing_field": 1}


def test_fct_orders_rows_written_by_hand(pipeline, engine):
    with engine.connect() as conn:
        rows = {
            r.order_id: r
            for r in conn.execute(
                sa.text("select * from marts.fct_orders where order_id like 'E2E-%' order by order_id")
            )
        }
    assert set(rows) == {"E2E-ACME-1", "E2E-GLOBEX-1", "E2E-CANCEL-1"}
    acme = rows["E2E-ACME-1"]
    assert acme.tenant_id == "acme" and acme.warehouse_id == "NJ1"
    assert acme.carrier == "ups" and acme.service_level == "express" and acme.tracking_number == "1Z999"
    assert acme.created_at == dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert acme.paid_at == dt.datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
    assert acme.pick_completed_at == dt.datetime(2026, 3, 2, 15, 10, tzinfo=UTC)
    assert acme.pack_completed_at == dt.datetime(2026, 3, 2, 15, 40, tzinfo=UTC)
    assert acme.label_printed_at == dt.datetime(2026, 3, 2, 15, 45, tzinfo=UTC)
    # Earliest of carrier_pickup (16:30 local) and the carrier's picked_up scan (16:20 local).
    assert acme.handed_to_carrier_at == dt.datetime(2026, 3, 2, 21, 20, tzinfo=UTC)
    assert acme.delivered_at == dt.datetime(2026, 3, 4, 20, 0, tzinfo=UTC)
    assert acme.units == 3 and acme.cartons == 1 and str(acme.postage) == "7.35"
    assert acme.is_cancelled is False and acme.cancelled_at is None
    assert acme.event_count == 9

    globex = rows["E2E-GLOBEX-1"]
    assert globex.warehouse_id == "BER1"
    assert globex.handed_to_carrier_at == dt.datetime(2026, 3, 2, 15, 20, tzinfo=UTC)

    cancelled = rows["E2E-CANCEL-1"]
    assert cancelled.is_cancelled is True
    assert cancelled.cancelled_at == dt.datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    assert cancelled.warehouse_id == "NJ1"  # the tenant's default warehouse
    assert cancelled.service_level == "ground" and cancelled.units == 2


def test_rejected_record_is_kept_whole(pipeline, engine):
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select location, raw, error_code from ops.rejected_records where location like 'e2e-2.jsonl:%'")
        ).one()
    assert row.location == "e2e-2.jsonl:13"
    assert row.raw == '{"not": "an event"}'
    assert row.error_code == "missing_field"


def test_definitions_validate_with_the_dagster_cli(dbt_manifest):
    proc = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv" / "bin" / "dagster") if (PROJECT_ROOT / ".venv").exists() else "dagster",
            "definitions",
            "validate",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_the_compliance_in_the_metadata_is_the_kpi_tables(pipeline, engine):
    """The UI's compliance figure is the mart's: its counts summed, not a second reading of the evaluations
    (which counted a stage met before its due time as decided; the KPI counts a stage once it is due)."""
    mats = [
        e.event_specific_data.materialization
        for e in pipeline.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path == ["marts", "agg_sla_compliance_daily"]
    ]
    mat = mats[-1]
    with engine.connect() as conn:
        due, met = conn.execute(
            sa.text("select sum(due_count), sum(met_count) from marts.agg_sla_compliance_daily")
        ).one()
    assert due > 0
    assert (mat.metadata["due_count"].value, mat.metadata["met_count"].value) == (due, met)
    assert mat.metadata["compliance_pct"].value == round(100.0 * met / due, 2)
