"""Helpers for writing test inputs and running the CLI as a user does (no logic under test lives here)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from e2a_dagster.lib.core.settings import PROJECT_ROOT
from e2a_dagster.lib.ingestion.events import FIELDS


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


def write_csv(path: Path, records: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FIELDS))
        writer.writeheader()
        for record in records:
            row = {k: ("" if v is None else (json.dumps(v) if isinstance(v, dict) else v)) for k, v in record.items()}
            writer.writerow(row)
    return path


def order_timeline(
    order_id: str, tenant: str = "acme", warehouse: str = "NJ1", day: str = "2026-03-02", offset: str = "-05:00"
) -> list[dict]:
    """A complete, hand-written order: created, paid, picked, packed, labelled, collected, delivered."""

    def ev(kind: str, source: str, at: str, **extra) -> dict:
        return {
            "event_id": f"{order_id}-{kind}",
            "tenant_id": tenant,
            "source": source,
            "event_type": kind,
            "order_id": order_id,
            "occurred_at": f"{day}T{at}{offset}",
            **extra,
        }

    return [
        ev("order_created", "oms", "09:00:00", units=3, service_level="express"),
        ev("order_paid", "oms", "09:05:00"),
        ev("pick_started", "wms", "09:30:00", warehouse_id=warehouse),
        ev("pick_completed", "wms", "10:10:00", warehouse_id=warehouse, units=3, lines=2),
        ev("pack_completed", "wms", "10:40:00", warehouse_id=warehouse, cartons=1),
        ev(
            "label_printed",
            "wms",
            "10:45:00",
            warehouse_id=warehouse,
            carrier="ups",
            service_level="express",
            tracking_number="1Z999",
            postage="7.35",
        ),
        ev("carrier_pickup", "wms", "16:30:00", warehouse_id=warehouse, carrier="ups"),
        ev("picked_up", "carrier", "16:20:00", carrier="ups"),
        ev("delivered", "carrier", "15:00:00", carrier="ups", **{"occurred_at": f"2026-03-04T15:00:00{offset}"}),
    ]


def e2a(env: dict, *args: str, text: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """``e2a ARGS`` in a subprocess of this venv's interpreter, never raising on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "e2a_dagster.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=text,
        timeout=timeout,
        check=False,
    )


def fresh_database(pg_info, name: str) -> str:
    """A new empty database ``name`` on the session's server; returns its URL."""
    with psycopg.connect(pg_info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    return pg_info.with_dbname(name).url()


def cli_environment(home: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of the session's E2A_/DAGSTER_ settings, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2A_", "DAGSTER_HOME"))}
    env.update({"E2A_HOME": str(home), "E2A_DATABASE_URL": database_url, **extra})
    return env
