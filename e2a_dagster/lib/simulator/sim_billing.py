"""The simulator's billing system: monthly invoices per tenant (DESIGN §4.3) from the rate cards (DESIGN §6),
with injected errors of every discrepancy type, each recorded in the ground truth.

The correct invoice follows DESIGN §6 on the *observable* activity (the events the simulator wrote), so an
invoice guard that implements §6 should find exactly the injected errors.

Optionally (``supplementary_invoices``) the billing system sends a month in two invoices, as real ones do: the
main invoice leaves some correct lines out, and a supplementary invoice (``…-S``, dated four days later)
bills them, carries the second line of one injected duplicate, and reverses and rebills one correct line (a
credit-note pair that nets to nothing). None of that is an error: the ground truth keeps the same errors, each
naming the invoice DESIGN §6 says it belongs to (the latest invoice billing the line, or the period's latest
invoice when nothing billed it) and its period."""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from e2a_dagster.lib.core.reference import reference_rows
from e2a_dagster.lib.core.settings import reference_dir
from e2a_dagster.lib.core.vocabulary import FINDINGS
from e2a_dagster.lib.invoicing.billing import FIELDS as BILLING_FIELDS

CENT = Decimal("0.01")
COLUMNS = BILLING_FIELDS  # the billing file contract (DESIGN §4.3) lives once, in lib/invoicing/billing.py
DISCREPANCY_TYPES = FINDINGS  # the types the simulator injects: every finding (lib/core/vocabulary.py)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class BillableOrder:
    """One order's billable facts, as the canonical rules derive them from observable events."""

    tenant_id: str
    order_id: str
    handed_to_carrier_at: datetime | None
    cancelled_at: datetime | None
    units: int | None
    cartons: int | None
    postage: Decimal | None
    returns: tuple[datetime, ...] = ()
    ship_late: bool = False


@dataclass(frozen=True)
class Line:
    charge_code: str
    order_id: str | None
    quantity: Decimal
    unit_rate: Decimal
    amount: Decimal
    line_id: str | None = None  # None: numbered in file order when written


@dataclass
class Invoice:
    invoice_id: str
    tenant_id: str
    currency: str
    period_start: date
    period_end: date
    lines: list[Line] = field(default_factory=list)
    days_after_period: int = 1

    @property
    def invoice_date(self) -> date:
        return self.period_end + timedelta(days=self.days_after_period)


class RateCards:
    def __init__(self, seeds_dir: Path | None = None):
        seeds_dir = seeds_dir or reference_dir()
        self.rows = reference_rows("rate_cards.csv", seeds_dir)
        self.credit_terms = reference_rows("sla_credit_terms.csv", seeds_dir)
        self.tenants = {r["tenant_id"]: r for r in reference_rows("tenants.csv", seeds_dir)}

    def _effective(self, rows: list[dict], tenant: str, day: date) -> list[dict]:
        return [
            r
            for r in rows
            if r["tenant_id"] == tenant
            and date.fromisoformat(r["effective_from"]) <= day < date.fromisoformat(r["effective_to"])
        ]

    def card(self, tenant: str, day: date) -> dict[str, list[dict]]:
        by_code: dict[str, list[dict]] = defaultdict(list)
        for r in self._effective(self.rows, tenant, day):
            by_code[r["charge_code"]].append(r)
        return by_code

    def credit(self, tenant: str, day: date, stage: str = "ship") -> dict | None:
        rows = [r for r in self._effective(self.credit_terms, tenant, day) if r["stage"] == stage]
        return rows[0] if rows else None


def _unit_rate(tiers: list[dict], volume: int) -> Decimal:
    """Whole-volume tiers: the tier the month's total falls in prices every unit (marginal tiers are not used
    by the shipped rate cards; a card with them is refused rather than priced wrongly)."""
    for tier in tiers:
        if tier["tier_mode"] != "whole_volume":
            raise ValueError("the simulator prices whole_volume tiers only")
    for tier in sorted(tiers, key=lambda t: int(t["tier_min"])):
        hi = int(tier["tier_max"]) if tier["tier_max"] else None
        if volume >= int(tier["tier_min"]) and (hi is None or volume <= hi):
            rate = Decimal(tier["rate"])
            markup = Decimal(tier["markup_pct"]) if tier["markup_pct"] else Decimal(0)
            return rate * (1 + markup / 100)
    raise ValueError(f"no tier covers volume {volume}")


def month_of(at: datetime, tz: ZoneInfo) -> date:
    local = at.astimezone(tz)
    return date(local.year, local.month, 1)


def month_end(first: date) -> date:
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def correct_invoices(orders: list[BillableOrder], cards: RateCards, *, end: datetime, run_tag: str) -> list[Invoice]:
    """What the billing system should bill, per tenant and complete calendar month (tenant time zone)."""
    by_month: dict[tuple[str, date], list[BillableOrder]] = defaultdict(list)
    returns_by_month: dict[tuple[str, date], list[tuple[str, datetime]]] = defaultdict(list)
    for o in orders:
        tz = ZoneInfo(cards.tenants[o.tenant_id]["time_zone"])
        if o.handed_to_carrier_at is not None:
            by_month[(o.tenant_id, month_of(o.handed_to_carrier_at, tz))].append(o)
        for r in o.returns:
            returns_by_month[(o.tenant_id, month_of(r, tz))].append((o.order_id, r))
    invoices = []
    for tenant, first in sorted(set(by_month) | set(returns_by_month)):
        tz = ZoneInfo(cards.tenants[tenant]["time_zone"])
        last = month_end(first)
        if datetime.combine(last + timedelta(days=1), datetime.min.time(), tz) > end:
            continue  # the month is not over: no invoice yet
        card = cards.card(tenant, first)
        shipped = sorted(by_month[(tenant, first)], key=lambda o: o.order_id)
        inv = Invoice(
            f"INV-{tenant.upper()}-{first:%Y%m}-{run_tag}",
            tenant,
            cards.tenants[tenant]["currency"],
            first,
            last,
        )
        order_rate = _unit_rate(card["ORDER_FEE"], len(shipped))
        unit_rate = _unit_rate(card["PICK_UNIT"], sum(o.units or 0 for o in shipped))
        carton_rate = _unit_rate(card["PACK_CARTON"], sum(o.cartons or 1 for o in shipped))
        ship_rate = _unit_rate(card["SHIPPING"], len(shipped))
        order_fee: dict[str, Decimal] = {}
        for o in shipped:
            order_fee[o.order_id] = money(order_rate)
            inv.lines.append(Line("ORDER_FEE", o.order_id, Decimal(1), order_rate, money(order_rate)))
            if o.units:
                inv.lines.append(Line("PICK_UNIT", o.order_id, Decimal(o.units), unit_rate, money(unit_rate * o.units)))
            cartons = o.cartons if o.cartons is not None else 1
            inv.lines.append(
                Line("PACK_CARTON", o.order_id, Decimal(cartons), carton_rate, money(carton_rate * cartons))
            )
            if o.postage is not None:  # per label: quantity 1, unit rate = amount = postage × (1 + markup)
                label = money(o.postage * ship_rate)
                inv.lines.append(Line("SHIPPING", o.order_id, Decimal(1), label, label))
        returned = sorted(returns_by_month[(tenant, first)])
        if returned and card.get("RETURN_FEE"):
            rate = _unit_rate(card["RETURN_FEE"], len(returned))
            for order_id, _ in returned:
                inv.lines.append(Line("RETURN_FEE", order_id, Decimal(1), rate, money(rate)))
        minimum = card.get("MONTHLY_MINIMUM")
        fees = sum((ln.amount for ln in inv.lines if ln.charge_code != "SHIPPING"), Decimal(0))
        if minimum and minimum[0]["minimum_amount"] and fees < Decimal(minimum[0]["minimum_amount"]):
            shortfall = Decimal(minimum[0]["minimum_amount"]) - fees
            inv.lines.append(Line("MONTHLY_MINIMUM", None, Decimal(1), shortfall, money(shortfall)))
        terms = cards.credit(tenant, first)
        if terms:
            subtotal = sum((ln.amount for ln in inv.lines), Decimal(0))
            credits = []
            for o in shipped:
                if not o.ship_late:
                    continue
                basis = sum(
                    (
                        ln.amount
                        for ln in inv.lines
                        if ln.order_id == o.order_id and ln.charge_code == terms["basis_charge_code"]
                    ),
                    Decimal(0),
                )
                if terms["credit_type"] == "percent_of_charge":
                    amount = money(basis * Decimal(terms["credit_value"]) / 100)
                else:
                    amount = money(Decimal(terms["credit_value"]))
                credits.append((o.order_id, amount))
            cap = money(subtotal * Decimal(terms["cap_pct_of_subtotal"]) / 100)
            total = sum((a for _, a in credits), Decimal(0))
            if credits and total > cap:
                # The cap binds: every credit shrinks by cap/total; the rounding rest goes on the last line.
                scaled = [(oid, money(a * cap / total)) for oid, a in credits]
                rest = cap - sum((a for _, a in scaled), Decimal(0))
                scaled[-1] = (scaled[-1][0], scaled[-1][1] + rest)
                credits = scaled
            for order_id, amount in credits:
                inv.lines.append(Line("SLA_CREDIT", order_id, Decimal(1), -amount, -amount))
        invoices.append(inv)
    return invoices


def inject_errors(
    invoices: list[Invoice], orders: list[BillableOrder], cards: RateCards, rng: random.Random, *, rate: float
) -> list[dict]:
    """Turn the correct invoices into the billed ones, in place, with errors of every discrepancy type where the
    invoice allows it (``rate`` × orders / 6 of each, at least one). Returns the ground-truth records."""
    truth: list[dict] = []
    cancelled_by_month: dict[tuple[str, date], list[BillableOrder]] = defaultdict(list)
    for o in orders:
        if o.cancelled_at is not None and o.handed_to_carrier_at is None:
            tz = ZoneInfo(cards.tenants[o.tenant_id]["time_zone"])
            cancelled_by_month[(o.tenant_id, month_of(o.cancelled_at, tz))].append(o)

    def rec(
        inv: Invoice,
        dtype: str,
        expected: Line | None,
        billed: Line | None,
        line_id: str | None,
        billed_count: int = 1,
    ) -> dict:
        ref = billed or expected

        def fmt(ln: Line | None) -> dict | None:
            if ln is None:
                return None
            return {"quantity": str(ln.quantity), "unit_rate": str(ln.unit_rate), "amount": str(ln.amount)}

        billed_amount = (billed.amount * billed_count) if billed else Decimal(0)
        return {
            "kind": "billing_error",
            "invoice_id": inv.invoice_id,
            "tenant_id": inv.tenant_id,
            "period_start": inv.period_start.isoformat(),
            "line_id": line_id,
            "charge_code": ref.charge_code,
            "order_id": ref.order_id,
            "discrepancy_type": dtype,
            "expected": fmt(expected),
            "billed": fmt(billed),
            "delta_amount": str(billed_amount - (expected.amount if expected else Decimal(0))),
            "currency": inv.currency,
        }

    for inv in invoices:
        n_orders = len({ln.order_id for ln in inv.lines if ln.charge_code == "ORDER_FEE"})
        per_type = max(1, round(rate * n_orders / len(DISCREPANCY_TYPES)))
        used: set[str] = set()  # one error per order keeps every (charge, order) grain unambiguous

        def pick(code: str, inv: Invoice = inv, used: set[str] = used, per_type: int = per_type) -> list[int]:
            idx = [i for i, ln in enumerate(inv.lines) if ln.charge_code == code and ln.order_id not in used]
            chosen = rng.sample(idx, min(per_type, len(idx)))
            used.update(inv.lines[i].order_id for i in chosen)
            return chosen

        changes: dict[int, Line | None] = {}
        pending: list[tuple[str, Line | None, Line | None, int | None, int]] = []  # dtype, exp, billed, index
        for i in pick("ORDER_FEE"):
            exp = inv.lines[i]
            bad_rate = exp.unit_rate + Decimal("0.25")
            changes[i] = replace(exp, unit_rate=bad_rate, amount=money(bad_rate * exp.quantity))
            pending.append(("rate_mismatch", exp, changes[i], i, 1))
        for i in pick("SHIPPING"):  # a label billed 5 % over the contract's markup: same quantity 1, other amount
            exp = inv.lines[i]
            bad_amount = exp.amount + money(exp.amount * Decimal("0.05"))
            changes[i] = replace(exp, unit_rate=bad_amount, amount=bad_amount)
            pending.append(("rate_mismatch", exp, changes[i], i, 1))
        for i in pick("PICK_UNIT"):
            exp = inv.lines[i]
            qty = exp.quantity + 1
            changes[i] = replace(exp, quantity=qty, amount=money(exp.unit_rate * qty))
            pending.append(("quantity_mismatch", exp, changes[i], i, 1))
        extra: list[tuple[str, Line, Line | None]] = []
        for i in pick("PACK_CARTON"):
            exp = inv.lines[i]
            extra.append(("duplicate_charge", exp, exp))
        for i in pick("SHIPPING"):
            exp = inv.lines[i]
            changes[i] = None
            pending.append(("unbilled", exp, None, None, 0))
        if inv.tenant_id in {r["tenant_id"] for r in cards.credit_terms}:
            for i in pick("SLA_CREDIT"):
                exp = inv.lines[i]
                changes[i] = None
                pending.append(("missing_sla_credit", exp, None, None, 0))
        candidates = [
            o for o in cancelled_by_month.get((inv.tenant_id, inv.period_start), []) if o.order_id not in used
        ]
        order_fee = next((ln for ln in inv.lines if ln.charge_code == "ORDER_FEE"), None)
        for o in rng.sample(candidates, min(per_type, len(candidates))) if order_fee else []:
            used.add(o.order_id)
            extra.append(
                (
                    "unexpected_charge",
                    None,
                    Line("ORDER_FEE", o.order_id, Decimal(1), order_fee.unit_rate, order_fee.amount),
                )
            )

        # Rebuild the billed lines with stable line ids, then record the truth with those ids.
        billed: list[Line] = []
        index_to_line_id: dict[int, str] = {}
        for i, ln in enumerate(inv.lines):
            new = changes.get(i, ln) if i in changes else ln
            if new is None:
                continue
            billed.append(new)
            index_to_line_id[i] = f"{len(billed):05d}"
        for dtype, exp, bad, i, _ in pending:
            truth.append(rec(inv, dtype, exp, bad, index_to_line_id.get(i) if i is not None else None))
        for dtype, exp, bad in extra:
            billed.append(bad)
            line_id = f"{len(billed):05d}"
            truth.append(rec(inv, dtype, exp, bad, line_id, billed_count=2 if dtype == "duplicate_charge" else 1))
        inv.lines = billed
    return truth


def write_invoices(billing_dir: Path, invoices: list[Invoice]) -> list[Path]:
    """One CSV per invoice (written under a temporary name, then renamed, so a reader never sees half)."""
    billing_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for inv in invoices:
        path = billing_dir / f"{inv.invoice_id}.csv"
        tmp = path.with_name(f".{path.name}.part")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for n, ln in enumerate(inv.lines, start=1):
                writer.writerow(
                    [
                        inv.invoice_id,
                        inv.tenant_id,
                        inv.invoice_date.isoformat(),
                        inv.period_start.isoformat(),
                        inv.period_end.isoformat(),
                        ln.line_id or f"{n:05d}",
                        ln.charge_code,
                        ln.order_id or "",
                        _num(ln.quantity),
                        _num(ln.unit_rate),
                        f"{ln.amount:.2f}",
                        inv.currency,
                    ]
                )
        os.replace(tmp, path)
        paths.append(path)
    return paths


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." not in text or len(text.split(".")[1]) >= 2 else f"{value:.2f}"


SUPPLEMENTARY_DAYS = 5  # the supplementary invoice is dated 5 days after the period (the main one: 1)


def supplementary_invoices(
    invoices: list[Invoice], truth: list[dict], rng: random.Random, *, end: datetime, cards: RateCards, share: float
) -> list[Invoice]:
    """Split each month's billed invoice in two (see the module doc), in place; returns the supplementary
    invoices and rewrites the ``truth`` records (``kind = billing_error``) to name the invoice DESIGN §6 gives
    them. Only months whose supplementary invoice is dated by ``end`` (tenant time zone) get one."""
    errors_by_invoice: dict[str, list[dict]] = defaultdict(list)
    for record in truth:
        errors_by_invoice[record["invoice_id"]].append(record)
    out: list[Invoice] = []
    for inv in invoices:
        tz = ZoneInfo(cards.tenants[inv.tenant_id]["time_zone"])
        issued = inv.period_end + timedelta(days=SUPPLEMENTARY_DAYS)
        if datetime.combine(issued, datetime.min.time(), tz) > end:
            continue
        # Freeze the main invoice's line ids (its lines keep them when some move out).
        inv.lines = [replace(ln, line_id=ln.line_id or f"{n:05d}") for n, ln in enumerate(inv.lines, start=1)]
        records = errors_by_invoice.get(inv.invoice_id, [])
        erroneous = {(r["charge_code"], r["order_id"]) for r in records}
        correct = [
            i
            for i, ln in enumerate(inv.lines)
            if ln.order_id is not None and (ln.charge_code, ln.order_id) not in erroneous
        ]
        moved = set(rng.sample(correct, min(len(correct), max(1, round(share * len(inv.lines))))))
        rest = [i for i in correct if i not in moved]
        supp = Invoice(
            f"{inv.invoice_id}-S",
            inv.tenant_id,
            inv.currency,
            inv.period_start,
            inv.period_end,
            days_after_period=SUPPLEMENTARY_DAYS,
        )
        supp.lines = [inv.lines[i] for i in sorted(moved)]
        # A credit-note pair: one correct line still on the main invoice reversed and billed again.
        if rest:
            again = inv.lines[rng.choice(rest)]
            supp.lines.append(replace(again, unit_rate=-again.unit_rate, amount=-again.amount))
            supp.lines.append(again)
        # The second line of one injected duplicate arrives on the supplementary invoice.
        duplicates = [r for r in records if r["discrepancy_type"] == "duplicate_charge"]
        moved_duplicate = None
        if duplicates:
            moved_duplicate = rng.choice(duplicates)
            index = next(i for i, ln in enumerate(inv.lines) if ln.line_id == moved_duplicate["line_id"])
            supp.lines.append(inv.lines[index])
            moved.add(index)
        inv.lines = [ln for i, ln in enumerate(inv.lines) if i not in moved]
        supp.lines = [replace(ln, line_id=f"S{n:04d}") for n, ln in enumerate(supp.lines, start=1)]
        for record in records:
            # DESIGN §6: the invoice that billed the line (the latest when several did); nothing billed → the
            # period's latest invoice.
            if record["discrepancy_type"] in ("unbilled", "missing_sla_credit") or record is moved_duplicate:
                record["invoice_id"] = supp.invoice_id
            if record is moved_duplicate:
                record["line_id"] = next(
                    ln.line_id
                    for ln in reversed(supp.lines)
                    if (ln.charge_code, ln.order_id) == (record["charge_code"], record["order_id"])
                )
        out.append(supp)
    return out


def invoice_truth(inv: Invoice) -> dict:
    total = sum((ln.amount for ln in inv.lines), Decimal(0))
    return {
        "kind": "invoice",
        "invoice_id": inv.invoice_id,
        "tenant_id": inv.tenant_id,
        "period_start": inv.period_start.isoformat(),
        "period_end": inv.period_end.isoformat(),
        "lines": len(inv.lines),
        "billed_total": str(total),
        "currency": inv.currency,
    }
