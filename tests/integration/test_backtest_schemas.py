"""A backtest's schemas (lib/core/backtest.py): created apart from the live ones, replaced by the next backtest of the
same name, listed and dropped, and never a schema a backtest did not create."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core.backtest import (
    BacktestError,
    dbt_args,
    drop_backtest,
    list_backtests,
    prepare_schemas,
    schema_names,
    validate_name,
)

AS_OF = datetime.fromisoformat("2026-03-20T12:00:00+00:00")


def schemas_like(engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.text("select nspname from pg_namespace where starts_with(nspname, :p)"), {"p": prefix}
            ).scalars()
        )


def test_names_and_dbt_arguments():
    assert schema_names("q1") == {
        "reference": "q1_reference",
        "staging": "q1_staging",
        "intermediate": "q1_intermediate",
        "marts": "q1_marts",
        "actions": "q1_actions",
    }
    for bad in ("", "Q1", "1q", "q-1", "pg_q", "x" * 41, "marts; drop schema marts"):
        with pytest.raises(BacktestError):
            validate_name(bad)
    args = dbt_args("build", "q1", AS_OF, "agg_billing_monthly")
    assert args[:5] == ["build", "--select", "agg_billing_monthly", "--exclude-resource-type", "unit_test"]
    assert json.loads(args[args.index("--vars") + 1]) == {
        "as_of": "2026-03-20T12:00:00+00:00",
        "e2a_schema_prefix": "q1",
        "e2a_actions_schema": "q1_actions",
        "e2a_calendar_schema": "q1_reference",
    }
    assert args[args.index("--target-path") + 1].endswith("target/backtest-q1")


def test_prepare_replace_list_and_drop(engine, uid):
    name, other = f"bt{uid}", f"bt{uid}x"
    prepare_schemas(engine, name, AS_OF)
    prepare_schemas(engine, other, AS_OF)
    assert schemas_like(engine, f"{name}_") == sorted(schema_names(name).values())
    with engine.begin() as conn:
        conn.execute(sa.text(f"create table {name}_marts.leftover (x int)"))
        columns = (
            conn.execute(
                sa.text(
                    "select column_name from information_schema.columns "
                    "where table_schema = :s and table_name = 'invoice_adjustments' order by ordinal_position"
                ),
                {"s": f"{name}_actions"},
            )
            .scalars()
            .all()
        )
        live = (
            conn.execute(
                sa.text(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'actions' and table_name = 'invoice_adjustments' order by ordinal_position"
                )
            )
            .scalars()
            .all()
        )
    assert columns == live  # the same shape as the live table

    listed = {row["name"]: row for row in list_backtests(engine)}
    assert listed[name]["as_of"] == AS_OF.isoformat() and listed[name]["status"] == "running"

    later = datetime.fromisoformat("2026-03-25T00:00:00+00:00")
    prepare_schemas(engine, name, later)  # the next backtest of that name replaces it
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select to_regclass('{name}_marts.leftover')")).scalar_one() is None
    assert {row["name"]: row for row in list_backtests(engine)}[name]["as_of"] == later.isoformat()

    assert drop_backtest(engine, f"bt{uid[:-1]}_") == []  # '_' is not a wildcard: nothing of another name
    assert drop_backtest(engine, name) == sorted(schema_names(name).values())
    assert schemas_like(engine, f"{name}_") == [] and drop_backtest(engine, name) == []
    assert drop_backtest(engine, other) == sorted(schema_names(other).values())


def test_a_schema_a_backtest_did_not_create_is_never_replaced(engine, uid):
    name = f"own{uid}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {name}_marts"))
        conn.execute(sa.text(f"create table {name}_marts.precious (x int)"))
    try:
        with pytest.raises(BacktestError, match=f"{name}_marts exist and were not created by a backtest"):
            prepare_schemas(engine, name, AS_OF)
        assert drop_backtest(engine, name) == []
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"select to_regclass('{name}_marts.precious')")).scalar_one() is not None
            assert conn.execute(sa.text(f"select to_regnamespace('{name}_actions')")).scalar_one() is None
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {name}_marts cascade"))
