"""Migration 9 re-keys the adjustments written before issue 16 with the same hash as lib/invoicing.adjustment_id,
computed by PostgreSQL: the same inputs give the same id in SQL and in Python."""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa

from e2a_dagster.lib.core.schema import MIGRATIONS
from e2a_dagster.lib.invoicing.adjustments import ADJUSTMENT_ID_SQL, adjustment_id


def test_sql_and_python_give_the_same_adjustment_id(engine):
    rows = [
        ("acme", date(2026, 3, 1), "ORDER_FEE", "AC-1", "unbilled"),
        ("globex", date(2031, 12, 1), "MONTHLY_MINIMUM", None, "rate_mismatch"),
        ("acme", date(2026, 11, 1), "SLA_CREDIT", "ÄÖ-ü 7", "missing_sla_credit"),
    ]
    with engine.connect() as conn:
        got = [
            conn.execute(
                sa.text(
                    f"select {ADJUSTMENT_ID_SQL} from (select cast(:t as text) as tenant_id, "
                    "cast(:p as date) as period_start, cast(:c as text) as charge_code, cast(:o as text) as order_id, "
                    "cast(:d as text) as discrepancy_type) as r"
                ),
                {"t": t, "p": p, "c": c, "o": o, "d": d},
            ).scalar_one()
            for t, p, c, o, d in rows
        ]
    assert got == [adjustment_id(*row) for row in rows]
    assert len(set(got)) == 3 and all(re.fullmatch("[0-9a-f]{32}", g) for g in got)


def test_migration_9_uses_that_expression(engine):
    (statements,) = [s for v, _, s in MIGRATIONS if v == 9]

    def flat(text: str) -> str:
        return re.sub(r"\s+", "", text)

    assert any(flat(ADJUSTMENT_ID_SQL) in flat(s) for s in statements)
    with engine.connect() as conn:
        kinds = conn.execute(
            sa.text(
                "select pg_get_constraintdef(oid) from pg_constraint "
                "where conrelid = 'actions.notifications'::regclass and conname = 'notifications_kind_check'"
            )
        ).scalar_one()
        columns = set(
            conn.execute(
                sa.text(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'actions' and table_name = 'invoice_adjustments'"
                )
            ).scalars()
        )
    assert "invoice_approval_guard" in kinds
    assert {"period_start", "approval_reason"} <= columns


def test_migration_9_rekeys_the_rows_of_the_per_invoice_model(pg_info):
    """A database at migration 8 with adjustments of the per-invoice model: acme March 2026, order A7's shipping
    reported unbilled once per invoice of the month (INV-1, then the supplementary INV-2), and a review
    notification for the first. After migration 9 one row carries the period key, the other is superseded."""
    import json

    import psycopg

    from e2a_dagster.lib.core.database import make_engine
    from e2a_dagster.lib.core.schema import migrate

    name = "e2a_migration9_test"
    with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    engine = make_engine(pg_info.with_dbname(name))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create schema ops"))
            conn.execute(
                sa.text(
                    "create table ops.schema_migrations (version integer primary key, description text not null, "
                    "applied_at timestamptz not null default now())"
                )
            )
            for version, description, statements in MIGRATIONS:
                if version > 8:
                    break
                for statement in statements:
                    conn.execute(sa.text(statement))
                conn.execute(
                    sa.text("insert into ops.schema_migrations (version, description) values (:v, :d)"),
                    {"v": version, "d": description},
                )
            for old_id, invoice, updated in (("old-inv1", "INV-1", "2026-04-02"), ("old-inv2", "INV-2", "2026-04-06")):
                evidence = {"invoice_period": ["2026-03-01", "2026-03-31"], "expected": {"period_start": "2026-03-01"}}
                conn.execute(
                    sa.text(
                        """
                        insert into actions.invoice_adjustments (adjustment_id, tenant_id, invoice_id, charge_code,
                            order_id, discrepancy_type, kind, reason_code, reason, amount, currency, approval_status,
                            evidence, content_hash, updated_at)
                        values (:id, 'acme', :inv, 'SHIPPING', 'A7', 'unbilled', 'correction', 'UNBILLED_CHARGE', 'r',
                            6.60, 'USD', 'needs_review', cast(:ev as jsonb), 'h', cast(:u as timestamptz))
                        """
                    ),
                    {"id": old_id, "inv": invoice, "ev": json.dumps(evidence), "u": updated},
                )
            conn.execute(
                sa.text(
                    "insert into actions.notifications (kind, subject_id, tenant_id, title, message, status) "
                    "values ('invoice_adjustment_needs_review', 'old-inv2', 'acme', 't', '{}', 'skipped')"
                )
            )
        assert migrate(engine) == [v for v, _, _ in MIGRATIONS if v >= 9]
        new_id = adjustment_id("acme", date(2026, 3, 1), "SHIPPING", "A7", "unbilled")
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select adjustment_id, invoice_id, period_start, status from actions.invoice_adjustments "
                    "order by adjustment_id"
                )
            ).all()
            subject = conn.execute(sa.text("select subject_id from actions.notifications")).scalar_one()
        # the newest open row (INV-2's) takes the period key; INV-1's is superseded under its old id
        assert sorted((r.adjustment_id, r.invoice_id, r.period_start, r.status) for r in rows) == sorted(
            [(new_id, "INV-2", date(2026, 3, 1), "open"), ("old-inv1", "INV-1", date(2026, 3, 1), "superseded")]
        )
        assert subject == new_id
    finally:
        engine.dispose()
        with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
