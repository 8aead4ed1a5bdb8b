"""The dead-letter queue ``ops.rejected_records`` (DESIGN §4.4): replay and discard.

Replay re-validates a record with today's rules and reference data (a seed fix adding a tenant, say) and loads
what passes through the same idempotent insert as first ingestion, by source (landing events, Shopify pages,
invoice lines); the record becomes ``replayed``. A record that
still fails gets ``attempts + 1`` and its new error; after ``max_attempts`` it is ``failed`` and replay leaves it
alone unless asked for it by id. Database trouble is transient: retried with backoff, never counted as an
attempt."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlalchemy as sa

from e2a_dagster.lib.billing import SOURCE as BILLING
from e2a_dagster.lib.billing import replay_line
from e2a_dagster.lib.database import raw_connection
from e2a_dagster.lib.events import Fault, Rejected, csv_record, parse_json_line, parse_record, to_row
from e2a_dagster.lib.ingest import _TEMP_DDL, _load_batch
from e2a_dagster.lib.reference import Reference
from e2a_dagster.lib.shopify import (
    SOURCE as SHOPIFY,
)
from e2a_dagster.lib.shopify import (
    insert_orders,
    order_row,
    parse_page_body,
    validate_order,
    with_db_retries,
)

MAX_ATTEMPTS = 5


@dataclass
class ReplayResult:
    replayed: list[int] = field(default_factory=list)
    still_failing: list[int] = field(default_factory=list)
    marked_failed: list[int] = field(default_factory=list)
    loaded_rows: int = 0

    def as_rows(self) -> list[dict]:
        return [
            {"outcome": "replayed", "records": len(self.replayed)},
            {"outcome": "still failing (attempts + 1)", "records": len(self.still_failing)},
            {"outcome": "marked failed (max attempts reached)", "records": len(self.marked_failed)},
        ]


def _split_location(location: str) -> tuple[str, int]:
    name, _, line = location.rpartition(":")
    return name, int(line) if line.isdigit() else 0


def _landing_rows(raw: str, location: str, reference: Reference, events_dir: Path | None) -> list[tuple]:
    name, line = _split_location(location)
    if name.lower().endswith(".csv"):
        header_file = events_dir / name if events_dir else None
        if header_file is None or not header_file.exists():
            raise Rejected(
                [
                    Fault(
                        "replay_unavailable",
                        f"the CSV header of {name} is needed to read this row, and the file is gone",
                    )
                ]
            )
        with header_file.open(newline="", encoding="utf-8", errors="replace") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        row = next(csv.reader(io.StringIO(raw)), [])
        if len(row) != len(header):
            raise Rejected([Fault("malformed_csv", f"expected {len(header)} columns, found {len(row)}")])
        record = csv_record(dict(zip(header, row, strict=True)))
        event = parse_record(record, reference)
        return [to_row(event, json.dumps(record, default=str), name, line)]
    event, payload = parse_json_line(raw, reference)
    return [to_row(event, payload, name, line)]


def _shop_tenant(conn: psycopg.Connection, shop: str) -> str:
    row = conn.execute(
        "select tenant_id from ops.source_cursors where source = %s and source_key = %s", (SHOPIFY, shop)
    ).fetchone()
    if row is None or not row[0]:
        raise Rejected([Fault("unknown_shop", f"no tenant is known for shop {shop} (pull it once first)")])
    return row[0]


def _shopify_rows(conn: psycopg.Connection, raw: str, location: str) -> list:
    shop = location.split("/admin/api/")[0]
    tenant = _shop_tenant(conn, shop)
    page = location.split("#")[0]
    if "#orders[" in location:
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise Rejected([Fault("malformed_order", f"not JSON: {exc}")]) from None
        orders = [document]
    else:
        orders, error = parse_page_body(raw)
        if orders is None:
            raise Rejected([Fault("malformed_page", error or "malformed page")])
    return [order_row(o, validate_order(o), shop=shop, tenant_id=tenant, page=page) for o in orders]


def replay(
    engine: sa.Engine,
    reference: Reference,
    *,
    ids: list[int] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    events_dir: Path | None = None,
    billing_dir: Path | None = None,
    db_retry_base: float = 0.5,
) -> ReplayResult:
    """Replay open records (or exactly ``ids``, which may include ``failed`` ones)."""
    with engine.connect() as conn:
        if ids:
            todo = [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "select rejected_id from ops.rejected_records where rejected_id = any(:ids) "
                        "and status in ('open', 'failed') order by rejected_id"
                    ),
                    {"ids": list(ids)},
                )
            ]
        else:
            todo = [
                r[0]
                for r in conn.execute(
                    sa.text("select rejected_id from ops.rejected_records where status = 'open' order by rejected_id")
                )
            ]
    result = ReplayResult()
    for rejected_id in todo:
        outcome = with_db_retries(
            lambda rid=rejected_id: _replay_one(engine, rid, reference, max_attempts, events_dir, billing_dir),
            base=db_retry_base,
        )
        kind, loaded = outcome
        result.loaded_rows += loaded
        {"replayed": result.replayed, "failing": result.still_failing, "failed": result.marked_failed}[kind].append(
            rejected_id
        )
    return result


def _replay_one(
    engine: sa.Engine,
    rejected_id: int,
    reference: Reference,
    max_attempts: int,
    events_dir: Path | None,
    billing_dir: Path | None = None,
) -> tuple[str, int]:
    with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
        row = cur.execute(
            "select source, location, raw, attempts from ops.rejected_records where rejected_id = %s for update",
            (rejected_id,),
        ).fetchone()
        source, location, raw, attempts = row
        try:
            if source == SHOPIFY:
                loaded = insert_orders(cur, _shopify_rows(conn, raw, location))
            elif source == BILLING:
                loaded = replay_line(cur, raw, location, reference, billing_dir)
            else:
                rows = _landing_rows(raw, location, reference, events_dir)
                cur.execute(_TEMP_DDL)
                cur.execute("truncate _incoming_events")
                loaded, refused = _load_batch(cur, rows, _split_location(location)[0])
                if refused:
                    raise refused[0].fault
        except Rejected as exc:
            status = "failed" if attempts + 1 >= max_attempts else "open"
            cur.execute(
                """
                update ops.rejected_records
                   set attempts = attempts + 1, last_attempt_at = now(), error_code = %s, error_message = %s,
                       status = %s
                 where rejected_id = %s
                """,
                (exc.code, exc.message, status, rejected_id),
            )
            return ("failed" if status == "failed" else "failing"), 0
        cur.execute(
            "update ops.rejected_records set status = 'replayed', resolved_at = now(), last_attempt_at = now(), "
            "attempts = attempts + 1 where rejected_id = %s",
            (rejected_id,),
        )
        return "replayed", loaded


def discard(engine: sa.Engine, ids: list[int]) -> int:
    """Mark records discarded (kept, never replayed). Returns how many changed."""
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                "update ops.rejected_records set status = 'discarded', resolved_at = now() "
                "where rejected_id = any(:ids) and status in ('open', 'failed')"
            ),
            {"ids": list(ids)},
        ).rowcount
