"""Helpers for the invoice guard tests: hand-made events and invoice CSVs (no logic under test here)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlalchemy as sa

from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.reference import reference_rows
from e2a_dagster.lib.core.settings import SEEDS_DIR
from e2a_dagster.lib.invoicing.billing import FIELDS
from e2a_dagster.lib.sla.calendar import calendar_days, calendar_window, data_range, write_calendar


def shipped_order(
    order_id: str,
    *,
    paid: str,
    handed: str,
    units: int | None,
    cartons: int | None,
    postage: str | None,
    tenant: str = "acme",
    warehouse: str = "NJ1",
) -> list[dict]:
    """An order paid at ``paid`` and handed to the carrier at ``handed`` (ISO-8601 with offset); the pick,
    pack and label land 30, 60 and 70 minutes after payment (same offset). ``None`` leaves the value off
    the event."""
    day, clock = paid.split("T")
    hh, mm = int(clock[:2]), int(clock[3:5])
    offset = clock[8:]

    def at(minutes: int) -> str:
        total = hh * 60 + mm + minutes
        return f"{day}T{total // 60:02d}:{total % 60:02d}:00{offset}"

    def ev(kind: str, source: str, when: str, **extra) -> dict:
        record = {
            "event_id": f"{order_id}-{kind}",
            "tenant_id": tenant,
            "source": source,
            "event_type": kind,
            "order_id": order_id,
            "occurred_at": when,
        }
        record.update({k: v for k, v in extra.items() if v is not None})
        return record

    wh = {"warehouse_id": warehouse}
    return [
        ev("order_created", "oms", at(-5), units=units),
        ev("order_paid", "oms", paid),
        ev("pick_completed", "wms", at(30), units=units, **wh),
        ev("pack_completed", "wms", at(60), cartons=cartons, **wh),
        ev("label_printed", "wms", at(70), carrier="ups", postage=postage, **wh),
        ev("carrier_pickup", "wms", handed, carrier="ups", **wh),
    ]


def event(order_id: str, kind: str, source: str, when: str, tenant: str = "acme", **extra) -> dict:
    return {
        "event_id": f"{order_id}-{kind}",
        "tenant_id": tenant,
        "source": source,
        "event_type": kind,
        "order_id": order_id,
        "occurred_at": when,
        **extra,
    }


def write_events(path: Path, events: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for record in events:
            fh.write(json.dumps(record) + "\n")
    return path


def write_invoice(
    path: Path,
    invoice_id: str,
    period: tuple[str, str],
    lines: list[tuple],
    *,
    tenant: str = "acme",
    currency: str = "USD",
    invoice_date: str | None = None,
) -> Path:
    """``lines`` = (line_id, charge_code, order_id, quantity, unit_rate, amount) tuples of text."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for line_id, charge, order_id, quantity, rate, amount in lines:
            writer.writerow(
                [
                    invoice_id,
                    tenant,
                    invoice_date or period[1],
                    period[0],
                    period[1],
                    line_id,
                    charge,
                    order_id or "",
                    quantity,
                    rate,
                    amount,
                    currency,
                ]
            )
    return path


def write_warehouse_calendar(engine: sa.Engine) -> None:
    """What the ``reference/warehouse_calendar`` asset writes, over today (the pinned clock) and every stored
    event."""
    first, last = calendar_window(clock.today(), *data_range(engine))
    write_calendar(
        engine,
        calendar_days(
            reference_rows("warehouses.csv", SEEDS_DIR),
            reference_rows("calendar_exceptions.csv", SEEDS_DIR),
            first,
            last,
        ),
    )
