"""Billing ingestion (DESIGN §4.3): the 3PL billing system's invoice CSVs into ``raw.invoice_lines``.

- Every line is validated into a specific error code (DESIGN §4.4); bad lines go to ``ops.rejected_records``
  (source ``billing``) and never stop the file.
- Lines are versioned by content hash: a re-sent identical line is a no-op, a changed line with the same
  (``invoice_id``, ``line_id``) is stored as a new version (the old one stays); ``staging`` reads the newest.
- One file = one transaction, with its ledger row in ``ops.ingested_files``: a re-dropped file is a no-op.
- Money is ``Decimal`` from the text as sent; floats never enter.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg
import sqlalchemy as sa

from e2a_dagster.lib.core.database import TRANSIENT_DB_ERRORS, raw_connection
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.core.vocabulary import INVOICE_CHARGE_CODES, METERED_CHARGE_CODES
from e2a_dagster.lib.ingestion.events import Fault, Rejected, control_characters
from e2a_dagster.lib.ingestion.ingest import (
    FileResult,
    IngestError,
    Rejection,
    csv_header_fault,
    file_hash,
    read_csv_with_header,
    record_rejections,
    reject_whole_file,
    write_ledger,
)
from e2a_dagster.lib.ingestion.raw_records import csv_records, sniff_file

log = logging.getLogger(__name__)

SOURCE = "billing"
BILLING_SUFFIXES = (".csv",)
FIELDS = (
    "invoice_id",
    "tenant_id",
    "invoice_date",
    "period_start",
    "period_end",
    "line_id",
    "charge_code",
    "order_id",
    "quantity",
    "unit_rate",
    "amount",
    "currency",
)
# A line may leave these empty (a period charge has no order; quantity and unit rate may be implied by the amount).
OPTIONAL_FIELDS = ("order_id", "quantity", "unit_rate")
REQUIRED_FIELDS = tuple(name for name in FIELDS if name not in OPTIONAL_FIELDS)
# Charges of one order; MONTHLY_MINIMUM is a period charge (no order).
ORDER_CHARGES = frozenset({*METERED_CHARGE_CODES, "SLA_CREDIT"})
CHARGE_CODES = frozenset(INVOICE_CHARGE_CODES)
PERIOD_CHARGES = CHARGE_CODES - ORDER_CHARGES
# |amount − quantity × unit_rate| up to one cent is the billing system's rounding; more is a wrong line.
ROUNDING_SLACK = Decimal("0.01")
MONEY_MAX = Decimal("9999999999.99")  # numeric(12,2)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")

# Column order of raw.invoice_lines as the loader writes it (COPY).
COLUMNS = (
    "invoice_id",
    "line_id",
    "content_hash",
    "tenant_id",
    "invoice_date",
    "period_start",
    "period_end",
    "charge_code",
    "order_id",
    "quantity",
    "unit_rate",
    "amount",
    "currency",
    "payload",
    "file_name",
    "line_number",
)


@dataclass(frozen=True)
class InvoiceLine:
    invoice_id: str
    line_id: str
    tenant_id: str
    invoice_date: date
    period_start: date
    period_end: date
    charge_code: str
    order_id: str | None
    quantity: Decimal | None
    unit_rate: Decimal | None
    amount: Decimal
    currency: str

    @property
    def content_hash(self) -> str:
        """Hash of the line's meaning (decimals normalised: ``2.5`` and ``2.50`` are the same line)."""
        parts = [
            self.invoice_id,
            self.line_id,
            self.tenant_id,
            self.invoice_date.isoformat(),
            self.period_start.isoformat(),
            self.period_end.isoformat(),
            self.charge_code,
            self.order_id or "",
            _canonical(self.quantity),
            _canonical(self.unit_rate),
            _canonical(self.amount),
            self.currency,
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def header(self) -> tuple:
        return (self.tenant_id, self.invoice_date, self.period_start, self.period_end, self.currency)


def _canonical(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


# ----------------------------------------------------------------------------------------------------
# Validation


def _decimal(value: str, field: str, code: str, *, places: int) -> tuple[Decimal | None, Fault | None]:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None, Fault(code, f"{field}: {value!r} is not a decimal number")
    if not number.is_finite() or "e" in value.lower():
        return None, Fault(code, f"{field}: {value!r} is not a plain decimal number")
    if -number.as_tuple().exponent > places:  # type: ignore[operator]
        return None, Fault("invalid_amount", f"{field}: {value!r} has more than {places} decimal places")
    if abs(number) > MONEY_MAX:
        return None, Fault("invalid_amount", f"{field}: {value!r} is out of range")
    return number, None


def _date(value: str, field: str) -> tuple[date | None, Fault | None]:
    if not _DATE.match(value):
        if "T" in value or " " in value.strip():
            if not _OFFSET.search(value):
                return None, Fault(
                    "naive_timestamp",
                    f"{field}: {value!r} is a timestamp without offset; send the tenant-local date (YYYY-MM-DD)",
                )
            return None, Fault("invalid_date", f"{field}: {value!r} is a timestamp; send the local date (YYYY-MM-DD)")
        return None, Fault("invalid_date", f"{field}: {value!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, Fault("invalid_date", f"{field}: {value!r} is not a valid calendar date")


def parse_line(record: dict[str, str], reference: Reference) -> InvoiceLine:
    """Validate one CSV record (column → text). Raises ``Rejected`` with every fault found."""
    values = {k: (record.get(k) or "").strip() for k in FIELDS}
    if any("\x00" in v for v in values.values()):
        raise Rejected([Fault("invalid_text", "record contains a NUL character, which PostgreSQL text cannot hold")])
    faults: list[Fault] = []
    for name, value in values.items():
        found = control_characters(value)
        if found:
            faults.append(Fault("control_character", f"{name}: contains control characters ({', '.join(found)})"))
    if faults:
        raise Rejected(faults)
    for name in REQUIRED_FIELDS:
        if not values[name]:
            faults.append(Fault("missing_field", f"{name}: required field is missing or empty"))
    for name in ("invoice_id", "line_id", "order_id"):
        if len(values[name]) > 128:
            faults.append(Fault("field_too_long", f"{name}: longer than 128 characters"))
    if faults:
        raise Rejected(faults)

    tenant = reference.tenants.get(values["tenant_id"])
    if tenant is None:
        faults.append(
            Fault(
                "unknown_tenant",
                f"tenant_id: unknown tenant {values['tenant_id']!r} (not in seeds/tenants.csv)",
            )
        )
    charge = values["charge_code"]
    if charge not in CHARGE_CODES:
        faults.append(
            Fault(
                "unknown_charge_code",
                f"charge_code: unknown charge code {charge!r} (known: {', '.join(sorted(CHARGE_CODES))})",
            )
        )
    elif charge in ORDER_CHARGES and not values["order_id"]:
        faults.append(Fault("missing_order_id", f"order_id: required on per-order charge {charge}"))
    if tenant is not None and values["currency"] != tenant.get("currency"):
        faults.append(
            Fault(
                "currency_mismatch",
                f"currency: {values['currency']!r} is not the tenant's contract currency {tenant.get('currency')!r}",
            )
        )

    dates = {}
    for name in ("invoice_date", "period_start", "period_end"):
        dates[name], fault = _date(values[name], name)
        if fault:
            faults.append(fault)
    if dates["period_start"] and dates["period_end"] and dates["period_end"] < dates["period_start"]:
        faults.append(
            Fault(
                "period_end_before_start",
                f"period_end {dates['period_end']} is before period_start {dates['period_start']}",
            )
        )

    amount, fault = _decimal(values["amount"], "amount", "non_numeric_amount", places=2)
    if fault:
        faults.append(fault)
    quantity = unit_rate = None
    if values["quantity"]:
        quantity, fault = _decimal(values["quantity"], "quantity", "non_numeric_quantity", places=4)
        if fault:
            faults.append(fault)
        elif quantity < 0:
            faults.append(Fault("negative_quantity", f"quantity: {values['quantity']} is negative"))
    if values["unit_rate"]:
        unit_rate, fault = _decimal(values["unit_rate"], "unit_rate", "non_numeric_amount", places=6)
        if fault:
            faults.append(fault)
    if bool(values["quantity"]) != bool(values["unit_rate"]) and not faults:
        faults.append(Fault("missing_field", "quantity and unit_rate: give both or neither"))
    if amount is not None and quantity is not None and unit_rate is not None and not faults:
        computed = quantity * unit_rate
        if abs(amount - computed) > ROUNDING_SLACK:
            faults.append(
                Fault(
                    "amount_mismatch",
                    f"amount {amount} is not quantity × unit_rate "
                    f"({quantity} × {unit_rate} = {computed}) within rounding",
                )
            )
    if faults:
        raise Rejected(faults)
    return InvoiceLine(
        invoice_id=values["invoice_id"],
        line_id=values["line_id"],
        tenant_id=values["tenant_id"],
        invoice_date=dates["invoice_date"],
        period_start=dates["period_start"],
        period_end=dates["period_end"],
        charge_code=charge,
        order_id=values["order_id"] or None,
        quantity=quantity,
        unit_rate=unit_rate,
        amount=amount,
        currency=values["currency"],
    )


# ----------------------------------------------------------------------------------------------------
# Reading a file


Parsed = tuple[int, InvoiceLine | None, str, Rejection | None]  # (line number, line, raw record, rejection)


def read_invoice_lines(path: Path, reference: Reference) -> Iterator[Parsed]:
    """Every record of an invoice CSV: valid lines, or a rejection with its location and raw text.

    Within one file, all lines of an invoice must agree on its header (tenant, dates, currency), and a
    (invoice_id, line_id) may appear once (a repeat with identical content is ignored). A BOM, CRLF line ends and
    bad bytes are handled per record (``raw_records.py``); a wrong header rejects every data line
    (``invalid_header``) with the header beside it."""
    name = path.name
    headers: dict[str, tuple] = {}
    seen: dict[tuple[str, str], str] = {}
    for raw, record, rejection, header in read_csv_with_header(path, FIELDS, FIELDS):
        number = raw.line
        if rejection is not None:
            yield number, None, rejection.raw, rejection
            continue
        assert record is not None
        location = f"{name}:{number}"
        try:
            line = parse_line(record, reference)
            first = headers.setdefault(line.invoice_id, line.header())
            if first != line.header():
                raise Rejected(
                    [
                        Fault(
                            "inconsistent_invoice_header",
                            f"invoice {line.invoice_id}: tenant, dates or currency differ from the invoice's first "
                            "line in this file",
                        )
                    ]
                )
            key = (line.invoice_id, line.line_id)
            previous = seen.get(key)
            if previous is not None:
                if previous == line.content_hash:
                    continue  # the same line twice in one file: nothing new
                raise Rejected(
                    [
                        Fault(
                            "duplicate_line_id",
                            f"line_id {line.line_id} of invoice {line.invoice_id} appears twice in this file with "
                            "different content; the first one is kept",
                        )
                    ]
                )
            seen[key] = line.content_hash
        except Rejected as exc:
            rejection = Rejection.of(location, raw, exc, header=header)
            yield number, None, rejection.raw, rejection
        except Exception as exc:  # the boundary: one line never stops the file
            log.exception("validating %s failed unexpectedly", location)
            message = f"the line could not be validated: {type(exc).__name__}: {exc}"
            fault = Rejected([Fault("validation_error", message)])
            rejection = Rejection.of(location, raw, fault, header=header)
            yield number, None, rejection.raw, rejection
        else:
            yield number, line, json.dumps(record, sort_keys=True), None


def pending_billing_files(directory: Path) -> list[Path]:
    """Invoice files in the billing folder, oldest first (hidden and partial files are not)."""
    if not directory.exists():
        return []
    files = [
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in BILLING_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


# ----------------------------------------------------------------------------------------------------
# Writing


@dataclass
class BillingFileResult(FileResult):
    superseding: int = 0  # lines that are a new version of a line loaded before

    def as_dict(self) -> dict:
        return {**super().as_dict(), "superseding": self.superseding}


_TEMP_DDL = """
create temp table if not exists _incoming_invoice_lines
  (like raw.invoice_lines including defaults) on commit drop
"""


def ingest_billing_file(engine: sa.Engine, path: Path, reference: Reference) -> BillingFileResult:
    """Load one invoice file in one transaction. Re-running on the same content is a no-op (``skipped``).
    Content never raises (bad lines go to the DLQ, a binary or unreadable file is one DLQ row); the database
    going away does (run it again), anything else is an ``IngestError`` naming the file and line."""
    try:
        content_hash = file_hash(path)
    except OSError as exc:
        whole = reject_whole_file(engine, path, SOURCE, Fault("unreadable_file", f"cannot read the file: {exc}"), None)
        return BillingFileResult(**whole.__dict__)
    fault = sniff_file(path)
    if fault is not None:
        return BillingFileResult(**reject_whole_file(engine, path, SOURCE, fault, content_hash).__dict__)
    result = BillingFileResult(file_name=path.name, content_hash=content_hash)
    rows: list[tuple] = []
    rejections: list[Rejection] = []
    try:
        for number, line, payload, rejection in read_invoice_lines(path, reference):
            result.line = number
            result.records += 1
            if rejection is not None:
                rejections.append(rejection)
                continue
            assert line is not None
            rows.append(_row(line, payload, path.name, number))
    except Exception as exc:
        raise IngestError(f"{path.name}:{result.line}: reading failed: {type(exc).__name__}: {exc}") from exc
    try:
        _store(engine, path, content_hash, rows, rejections, result)
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        raise IngestError(f"{path.name}: loading failed: {type(exc).__name__}: {exc}") from exc
    log.info("ingested %s: %s", path.name, result.as_dict())
    return result


def _store(
    engine: sa.Engine,
    path: Path,
    content_hash: str,
    rows: list[tuple],
    rejections: list[Rejection],
    result: BillingFileResult,
) -> None:
    with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (content_hash,))
        if cur.execute("select 1 from ops.ingested_files where content_hash = %s", (content_hash,)).fetchone():
            result.skipped = True
            return
        # Serialise billing loads so line versions are numbered in commit order.
        cur.execute("select pg_advisory_xact_lock(hashtextextended('raw.invoice_lines', 0))")
        if rows:
            _load(cur, rows, result)
        record_rejections(cur, SOURCE, rejections)
        result.rejected = len(rejections)
        for rej in rejections:
            result.reject_codes[rej.fault.code] = result.reject_codes.get(rej.fault.code, 0) + 1
        write_ledger(cur, content_hash, SOURCE, path.name, path.stat().st_size, result)


def _row(line: InvoiceLine, payload: str, file_name: str, number: int) -> tuple:
    """A raw.invoice_lines row in COLUMNS order."""
    return (
        line.invoice_id,
        line.line_id,
        line.content_hash,
        line.tenant_id,
        line.invoice_date,
        line.period_start,
        line.period_end,
        line.charge_code,
        line.order_id,
        line.quantity,
        line.unit_rate,
        line.amount,
        line.currency,
        payload,
        file_name,
        number,
    )


def replay_line(
    cur: psycopg.Cursor,
    raw: str,
    location: str,
    reference: Reference,
    billing_dir: Path | None = None,
    header: str | None = None,
) -> int:
    """Re-validate one rejected billing line (``e2a dlq replay``) and load it through the same insert as a file
    (a new version if the line changed); returns the rows loaded. The columns are the file's header when the
    file is still in ``billing_dir`` and its header is right, else the header stored with the record, else (a
    record rejected before headers were stored) the DESIGN §4.3 order. Raises ``Rejected`` when it still fails,
    including when it disagrees with the header (tenant, dates, currency) of the invoice's loaded lines."""
    name, _, number = location.rpartition(":")
    columns = _replay_columns(name, billing_dir, header)
    row = _csv_cells(raw)
    if len(row) != len(columns):
        raise Rejected([Fault("malformed_csv", f"expected {len(columns)} columns, found {len(row)}")])
    record = dict(zip(columns, row, strict=True))
    line = parse_line(record, reference)
    loaded = cur.execute(
        "select tenant_id, invoice_date, period_start, period_end, currency from raw.invoice_lines "
        "where invoice_id = %s order by line_version limit 1",
        (line.invoice_id,),
    ).fetchone()
    if loaded is not None and tuple(loaded) != line.header():
        raise Rejected(
            [
                Fault(
                    "inconsistent_invoice_header",
                    f"invoice {line.invoice_id}: tenant, dates or currency differ from its loaded lines",
                )
            ]
        )
    cur.execute("select pg_advisory_xact_lock(hashtextextended('raw.invoice_lines', 0))")
    result = BillingFileResult(file_name=name, content_hash="")
    line_number = int(number) if number.isdigit() else 0
    _load(cur, [_row(line, json.dumps(record, sort_keys=True), name, line_number)], result)
    return result.loaded


def _csv_cells(text: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text), strict=True), [])
    except csv.Error as exc:
        raise Rejected([Fault("malformed_csv", f"not CSV: {exc}")]) from None


def _replay_columns(name: str, billing_dir: Path | None, stored: str | None) -> list[str]:
    candidates = []
    path = billing_dir / name if billing_dir and name else None
    if path is not None and path.is_file():
        with path.open("rb") as fh:
            first = next(csv_records(fh), None)
        if first is not None and first.cells is not None:
            candidates.append([h.strip() for h in first.cells])
    if stored is not None:
        candidates.append([h.strip() for h in _csv_cells(stored)])
    for columns in candidates:
        if csv_header_fault(columns, FIELDS, FIELDS) is None:
            return columns
    if stored is None and not candidates:
        return list(FIELDS)
    problem = csv_header_fault(candidates[0], FIELDS, FIELDS) if candidates else "no header"
    raise Rejected([Fault("invalid_header", f"{problem}; fix the file's header, then replay")])


def _load(cur: psycopg.Cursor, rows: list[tuple], result: BillingFileResult) -> None:
    cols = ", ".join(COLUMNS)
    cur.execute(_TEMP_DDL)
    cur.execute("truncate _incoming_invoice_lines")
    with cur.copy(f"copy _incoming_invoice_lines ({cols}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)
    result.superseding = cur.execute(
        """
        select count(*) from _incoming_invoice_lines i
        where exists (select 1 from raw.invoice_lines r
                      where r.invoice_id = i.invoice_id and r.line_id = i.line_id)
          and not exists (select 1 from raw.invoice_lines r where r.invoice_id = i.invoice_id
                          and r.line_id = i.line_id and r.content_hash = i.content_hash)
        """
    ).fetchone()[0]
    cur.execute(
        f"""
        insert into raw.invoice_lines ({cols})
        select {cols} from _incoming_invoice_lines order by line_number
        on conflict (invoice_id, line_id, content_hash) do nothing
        """
    )
    result.loaded = cur.rowcount
    result.duplicates = len(rows) - result.loaded


def billing_ingested_hashes(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {
            row[0]
            for row in conn.execute(
                sa.text("select content_hash from ops.ingested_files where source = :s"), {"s": SOURCE}
            )
        }
