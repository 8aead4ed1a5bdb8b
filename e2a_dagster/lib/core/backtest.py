"""Backtests (``e2a run --as-of T [--into NAME]``): the pipeline evaluated at a past instant, side-effect free.

A backtest reads the live ``raw`` tables and writes only into its own schemas,
``NAME_reference``, ``NAME_staging``, ``NAME_intermediate``, ``NAME_marts`` and ``NAME_actions`` (default NAME
``backtest``): the same table names as the live ones, so the same queries read them with another schema. The
next backtest of that name replaces them; ``e2a backtest list`` / ``drop NAME`` manage them.

What it runs, in this order (plain Python, no Dagster run: no materialization of a live asset key reaches the
automation sensor):

1. The warehouse calendar from the seeds into ``NAME_reference.warehouse_calendar`` (around ``as_of`` and the
   data), then ``dbt build`` of every seed and model with ``--vars {as_of, e2a_schema_prefix: NAME,
   e2a_actions_schema, e2a_calendar_schema}`` and its own ``--target-path`` (macros/generate_schema_name.sql
   routes every node into ``NAME_<schema>``); a pinned ``as_of`` makes every live-incremental model recompute
   from the events at or before it, and knows only the invoices dated by then.
2. The invoice adjustments into ``NAME_actions.invoice_adjustments`` (lib/invoicing/adjustments.py, ``backtest=True``):
   never approved (every row ``needs_review``, the reason saying what the live rules would decide), nothing
   notified.
3. Narratives as templates only into ``NAME_actions.exception_narratives`` (no LLM call, no token budget).
4. ``agg_billing_monthly`` again, now that ``NAME_actions.invoice_adjustments`` holds the adjustments.

It never ingests (pending landing files stay pending), never writes ``ops.*`` bookkeeping, notifications or
reports, and never touches a live table."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from e2a_dagster.lib.core.database import ConnectionInfo
from e2a_dagster.lib.core.dbt import PRODUCT_BUILD_EXCLUDES
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, reference_dir
from e2a_dagster.lib.sla.calendar import calendar_from_seeds, calendar_window, data_range, write_calendar

DEFAULT_NAME = "backtest"
# What dbt builds (seeds included: the backtest prices with its own copy of the reference data) and what the
# Python steps write (the calendar, adjustments, narratives). Never raw or ops: raw is read live, ops not at all.
SCHEMAS = ("reference", "staging", "intermediate", "marts", "actions")
MARKER = "e2a backtest"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class BacktestError(ValueError):
    """A backtest that cannot run as asked (bad name, schemas that are not a backtest's); the message says why."""


def validate_name(name: str) -> str:
    if not _NAME.match(name or "") or name.startswith("pg"):
        raise BacktestError(
            f"backtest name {name!r}: use 1-40 lower-case letters, digits or '_', starting with a letter "
            "(not 'pg'); its schemas are NAME_marts, NAME_actions, ..."
        )
    return name


def schema_names(name: str) -> dict[str, str]:
    """``{live schema: backtest schema}``, e.g. ``{"marts": "backtest_marts", ...}``."""
    validate_name(name)
    return {schema: f"{name}_{schema}" for schema in SCHEMAS}


def target_path(name: str) -> Path:
    """dbt artifacts of a backtest: apart from the project's target/ (what Dagster loads) and other backtests."""
    return DBT_PROJECT_DIR / "target" / f"backtest-{validate_name(name)}"


@dataclass
class BacktestResult:
    name: str
    as_of: datetime
    schemas: dict[str, str]
    dbt_ok: bool
    dbt_message: str = ""
    figures: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.dbt_ok

    def rows(self) -> list[dict]:
        return [{"figure": k, "value": v} for k, v in self.figures.items()]


def _comment(name: str, as_of: datetime) -> str:
    return f"{MARKER} {name} as_of {as_of.isoformat()}"


def _owned_schemas(conn: sa.Connection, name: str | None = None) -> dict[str, str]:
    """``{schema: comment}`` of the schemas a backtest created (``name``'s only when given)."""
    rows = conn.execute(
        sa.text(
            """
            select nspname, obj_description(oid, 'pg_namespace')
            from pg_namespace
            where obj_description(oid, 'pg_namespace') like :marker
            order by nspname
            """
        ),
        {"marker": (f"{MARKER} {name} %" if name else f"{MARKER} %").replace("_", "\\_")},
    ).all()
    return {schema: comment for schema, comment in rows}


def prepare_schemas(engine: sa.Engine, name: str, as_of: datetime) -> dict[str, str]:
    """Drop the previous backtest of ``name`` and create its empty schemas (the actions tables shaped like the
    live ones). Refuses to replace a schema of that name that a backtest did not create."""
    schemas = schema_names(name)
    with engine.begin() as conn:
        owned = _owned_schemas(conn, name)
        existing = set(
            conn.execute(
                sa.text("select nspname from pg_namespace where nspname = any(:names)"),
                {"names": list(schemas.values())},
            ).scalars()
        )
        foreign = sorted(existing - set(owned))
        if foreign:
            raise BacktestError(
                f"schema(s) {', '.join(foreign)} exist and were not created by a backtest: pick another --into name"
            )
        for schema in sorted(set(owned) | existing):
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        comment = _comment(name, as_of).replace("'", "''")
        for schema in schemas.values():
            conn.execute(sa.text(f'create schema "{schema}"'))
            conn.execute(sa.text(f"comment on schema \"{schema}\" is '{comment}'"))
        conn.execute(
            sa.text(
                f"create table {schemas['reference']}.warehouse_calendar "
                "(like reference.warehouse_calendar including all)"
            )
        )
        actions = schemas["actions"]
        conn.execute(
            sa.text(f"create table {actions}.invoice_adjustments (like actions.invoice_adjustments including all)")
        )
        conn.execute(
            sa.text(f"create table {actions}.exception_narratives (like actions.exception_narratives including all)")
        )
        conn.execute(
            sa.text(
                f"""
                create view {actions}.exception_narratives_current as
                select * from {actions}.exception_narratives where is_current
                """
            )
        )
        conn.execute(
            sa.text(
                f"""
                create table {actions}.backtest_run (
                    name text primary key, as_of timestamptz not null, started_at timestamptz not null,
                    finished_at timestamptz, status text not null, summary jsonb not null default '{{}}'
                )
                """
            )
        )
        conn.execute(
            sa.text(
                f"insert into {actions}.backtest_run (name, as_of, started_at, status) "
                "values (:name, :as_of, now(), 'running')"
            ),
            {"name": name, "as_of": as_of},
        )
    return schemas


def dbt_vars(name: str, as_of: datetime) -> dict:
    """The dbt vars of a backtest (pure): the instant, the schema prefix, the actions tables to read."""
    return {
        "as_of": as_of.isoformat(),
        "e2a_schema_prefix": validate_name(name),
        "e2a_actions_schema": f"{name}_actions",
        "e2a_calendar_schema": f"{name}_reference",
    }


def dbt_args(command: str, name: str, as_of: datetime, *select: str) -> list[str]:
    """The dbt CLI arguments of one backtest step (pure, unit-tested)."""
    args = [command]
    if select:
        args += ["--select", *select]
    if command == "build":
        args += PRODUCT_BUILD_EXCLUDES
    return [*args, "--vars", json.dumps(dbt_vars(name, as_of)), "--target-path", str(target_path(name))]


def _tail(proc) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])


def _relation_exists(conn: sa.Connection, relation: str) -> bool:
    return conn.execute(sa.text("select to_regclass(:r) is not null"), {"r": relation}).scalar_one()


def run_backtest(
    engine: sa.Engine,
    info: ConnectionInfo,
    as_of: datetime,
    name: str = DEFAULT_NAME,
    *,
    reference: Reference | None = None,
    log_path: Path | None = None,
    run_dbt_fn=None,
    progress=None,
) -> BacktestResult:
    """Run a backtest at ``as_of`` into ``NAME_*`` (see the module doc). dbt's output goes to ``log_path``."""
    from e2a_dagster.lib.core.dbt import run_dbt
    from e2a_dagster.lib.explanations.writer import run_narratives
    from e2a_dagster.lib.invoicing.adjustments import sync_adjustments

    if as_of.tzinfo is None:
        raise BacktestError(f"as_of {as_of.isoformat()} needs a UTC offset")
    run_dbt_fn = run_dbt_fn or run_dbt
    say = progress or (lambda message: None)
    reference = reference or Reference.load()
    began = time.perf_counter()
    schemas = prepare_schemas(engine, name, as_of)
    result = BacktestResult(name=name, as_of=as_of, schemas=schemas, dbt_ok=True)
    logs: list[str] = []

    def dbt(*args: str) -> bool:
        proc = run_dbt_fn(list(args), info, check=False)
        logs.append(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            result.dbt_ok = False
            result.dbt_message = _tail(proc)
        return proc.returncode == 0

    first, last = calendar_window(as_of.date(), *data_range(engine))
    days = write_calendar(
        engine, calendar_from_seeds(reference_dir(), first, last), table=f"{schemas['reference']}.warehouse_calendar"
    )
    say(f"warehouse calendar {first}..{last} ({days} days) into {schemas['reference']}")
    say(f"dbt build into {schemas['marts']} (as_of {as_of.isoformat()})")
    dbt(*dbt_args("build", name, as_of))
    marts, actions = schemas["marts"], schemas["actions"]
    with engine.connect() as conn:
        has_reconciliation = _relation_exists(conn, f"{marts}.fct_invoice_reconciliation")
        has_exceptions = _relation_exists(conn, f"{marts}.fct_sla_exceptions")
    sync = None
    if has_reconciliation:
        say(f"invoice adjustments into {actions} (never approved)")
        sync = sync_adjustments(engine, reference, marts_schema=marts, actions_schema=actions, backtest=True)
        dbt(*dbt_args("build", name, as_of, "agg_billing_monthly"))
    narratives = None
    if has_exceptions:
        say(f"template narratives into {actions}")
        narratives = run_narratives(
            engine, None, schema=marts, actions_schema=actions, reference_schema=schemas["reference"]
        )
    result.figures = _figures(engine, schemas, sync, narratives)
    result.seconds = round(time.perf_counter() - began, 1)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"update {actions}.backtest_run set finished_at = now(), status = :status, "
                "summary = cast(:summary as jsonb) where name = :name"
            ),
            {
                "status": "succeeded" if result.ok else "failed",
                "summary": json.dumps({**result.figures, "seconds": result.seconds}, default=str),
                "name": name,
            },
        )
    if log_path is not None:
        log_path.write_text("\n".join(logs))
    return result


def _figures(engine: sa.Engine, schemas: dict[str, str], sync, narratives) -> dict[str, object]:
    marts, actions = schemas["marts"], schemas["actions"]
    out: dict[str, object] = {}
    with engine.connect() as conn:

        def count(relation: str, where: str = "true") -> int | str:
            if not _relation_exists(conn, relation):
                return "n/a"
            return conn.execute(sa.text(f"select count(*) from {relation} where {where}")).scalar_one()

        out["orders"] = count(f"{marts}.fct_orders")
        out["stage evaluations"] = count(f"{marts}.fct_sla_evaluations")
        out["open exceptions"] = count(f"{marts}.fct_sla_exceptions", "status = 'open'")
        out["expected charge lines"] = count(f"{marts}.fct_expected_charges")
        out["reconciliation rows"] = count(f"{marts}.fct_invoice_reconciliation")
        out["discrepancies"] = count(f"{marts}.fct_invoice_reconciliation", "discrepancy_type <> 'matched'")
        out["adjustments (never approved)"] = count(f"{actions}.invoice_adjustments")
        if _relation_exists(conn, f"{actions}.invoice_adjustments"):
            for currency, total in conn.execute(
                sa.text(f"select currency, sum(amount) from {actions}.invoice_adjustments group by 1 order by 1")
            ).all():
                out[f"adjustments amount {currency}"] = f"{total:.2f}"
    if sync is not None:
        out["live rules would auto-approve"] = sync.auto_approved_now
        out["live run guard would hold"] = sync.held_by_guard
    if narratives is not None:
        out["template narratives"] = narratives.written
    return out


def list_backtests(engine: sa.Engine) -> list[dict]:
    """Every backtest in the database: name, as_of, when it ran, status, its schemas."""
    with engine.connect() as conn:
        owned = _owned_schemas(conn)
        by_name: dict[str, list[str]] = {}
        for schema, comment in owned.items():
            by_name.setdefault(comment.split()[2], []).append(schema)
        rows = []
        for name, found in sorted(by_name.items()):
            row = {"name": name, "as_of": None, "ran_at": None, "status": "incomplete", "schemas": ", ".join(found)}
            meta = f"{name}_actions.backtest_run"
            if _relation_exists(conn, meta):
                run = conn.execute(
                    sa.text(f"select as_of, started_at, status from {meta} where name = :n"), {"n": name}
                ).first()
                if run is not None:
                    row.update(
                        as_of=run.as_of.isoformat(),
                        ran_at=run.started_at.isoformat(timespec="seconds"),
                        status=run.status,
                    )
            rows.append(row)
    return rows


def drop_backtest(engine: sa.Engine, name: str) -> list[str]:
    """Drop every schema of the backtest ``name`` (only schemas a backtest created); returns them."""
    validate_name(name)
    with engine.begin() as conn:
        owned = sorted(_owned_schemas(conn, name))
        for schema in owned:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
    return owned
