"""Hand-written stand-ins for the SLA marts (DESIGN §7 columns), in a per-test scratch schema."""

from __future__ import annotations

import sqlalchemy as sa

DDL = [
    """
    create table {s}.fct_sla_exceptions (
        exception_id text, tenant_id text, order_id text, stage text, status text, severity text,
        reason_code text, opened_at timestamptz, resolved_at timestamptz, minutes_late numeric
    )
    """,
    """
    create table {s}.fct_sla_evaluations (
        tenant_id text, order_id text, stage text, policy_id text, policy_version integer,
        started_at timestamptz, due_at timestamptz, ended_at timestamptz, status text, minutes_late numeric,
        severity text, as_of timestamptz, warehouse_id text, carrier text, service_level text, rule text
    )
    """,
    """
    create table {s}.fct_orders (
        tenant_id text, order_id text, warehouse_id text, carrier text, service_level text,
        created_at timestamptz, paid_at timestamptz, pick_completed_at timestamptz, pack_completed_at
        timestamptz,
        label_printed_at timestamptz, handed_to_carrier_at timestamptz, delivered_at timestamptz,
        cancelled_at timestamptz, units integer
    )
    """,
]


def create_marts(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
        for statement in DDL:
            conn.execute(sa.text(statement.format(s=schema)))


def drop_schema(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop schema if exists {schema} cascade"))


def add_exception(
    engine: sa.Engine,
    schema: str,
    *,
    exception_id: str,
    order_id: str,
    stage: str,
    status: str,
    severity: str | None,
    started_at: str,
    due_at: str,
    ended_at: str | None,
    minutes_late: float | None,
    tenant_id: str = "acme",
    warehouse_id: str = "NJ1",
    carrier: str | None = "ups",
    service_level: str | None = "ground",
    reason_code: str | None = None,
    policy_id: str = "default_pick",
    policy_version: int = 1,
    rule: str = "duration",
    as_of: str = "2026-03-03T18:00:00-05:00",
) -> None:
    """One exception with its evaluation and its order row."""
    row = {
        "exception_id": exception_id,
        "tenant_id": tenant_id,
        "order_id": order_id,
        "stage": stage,
        "status": status,
        "severity": severity,
        "reason_code": reason_code,
        "opened_at": due_at,
        "resolved_at": ended_at,
        "minutes_late": minutes_late,
        "policy_id": policy_id,
        "policy_version": policy_version,
        "started_at": started_at,
        "due_at": due_at,
        "ended_at": ended_at,
        "as_of": as_of,
        "warehouse_id": warehouse_id,
        "carrier": carrier,
        "service_level": service_level,
        "rule": rule,
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""insert into {schema}.fct_sla_exceptions values (:exception_id, :tenant_id, :order_id,
                :stage,
                :status, :severity, :reason_code, :opened_at, :resolved_at, :minutes_late)"""
            ),
            row,
        )
        conn.execute(
            sa.text(
                f"""insert into {schema}.fct_sla_evaluations values (:tenant_id, :order_id, :stage,
                :policy_id,
                :policy_version, :started_at, :due_at, :ended_at, :status, :minutes_late, :severity, :as_of,
                :warehouse_id, :carrier, :service_level, :rule)"""
            ),
            row,
        )
        conn.execute(
            sa.text(
                f"""insert into {schema}.fct_orders (tenant_id, order_id, warehouse_id, carrier,
                service_level,
                paid_at) select :tenant_id, :order_id, :warehouse_id, :carrier, :service_level, :started_at
                where not exists (select 1 from {schema}.fct_orders where tenant_id = :tenant_id
                                  and order_id = :order_id)"""
            ),
            row,
        )
