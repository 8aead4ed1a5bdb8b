"""Invoice adjustments (DESIGN §6): one per reconciliation row that is not ``matched``, written to
``actions.invoice_adjustments`` idempotently, and the guard on auto-approval.

- ``adjustment_id`` = hash of (tenant, period, charge code, order, discrepancy type), the reconciliation grain:
  the same discrepancy keeps its id across runs, also when a later invoice of the period changes the invoice it
  names (``invoice_id``: the invoice that billed the line, or the period's latest one for an unbilled line).
  ``amount`` = expected − billed (negative = credit to the client).
- Upsert: a row is rewritten only when its content changes (amount, evidence, reason, ...), so a second run
  over the same data changes nothing, not even ``updated_at``.
- A discrepancy that disappeared (the invoice was corrected, a supplementary invoice billed it, new events
  changed what is expected) is marked ``status = 'superseded'`` with ``superseded_at``, never deleted: what
  finance saw stays auditable. If it comes back, the same row is reopened.
- ``approval_status``: ``auto_approved`` when |amount| <= the tenant's ``auto_approve_limit``, else
  ``needs_review``; ``approval_reason`` says which. A person's decision (``approved`` / ``rejected``) is kept
  while the amount is unchanged.
- **The run guard**: one run may auto-approve at most ``auto_approve_max_per_run`` adjustments (default 20) or
  ``auto_approve_max_amount_per_run`` in Σ|amount| (default 500.00, tenant currency) per tenant
  (``seeds/tenants.csv``). Beyond either, every adjustment that run would auto-approve for that tenant goes to
  ``needs_review`` (reason ``run_guard: ...``; it stays there while its amount is unchanged, until a person
  decides) and one ``invoice_approval_guard`` notification says why. Mass findings are a symptom (a partial or
  missing invoice, a data problem), not money.
- A **backtest** (``lib/core/backtest.py``) writes into its own schema and never approves: every row is
  ``needs_review``, its ``approval_reason`` saying what the live rules would have decided.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from e2a_dagster.lib.core.reference import Reference

DEFAULT_MAX_PER_RUN = 20
DEFAULT_MAX_AMOUNT_PER_RUN = Decimal("500.00")
GUARD_PREFIX = "run_guard:"
BACKTEST_PREFIX = "backtest:"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

REASON_CODES = {
    "rate_mismatch": "RATE_MISMATCH",
    "quantity_mismatch": "QUANTITY_MISMATCH",
    "duplicate_charge": "DUPLICATE_CHARGE",
    "unexpected_charge": "UNEXPECTED_CHARGE",
    "unbilled": "UNBILLED_CHARGE",
    "missing_sla_credit": "MISSING_SLA_CREDIT",
}


def adjustment_id(
    tenant_id: str, period_start: date | str, charge_code: str, order_id: str | None, discrepancy: str
) -> str:
    """Stable id of a discrepancy at the reconciliation grain (tenant, period, charge, order) and its type.
    ``ADJUSTMENT_ID_SQL`` (schema migration 9) computes the same value in SQL."""
    period = period_start.isoformat() if isinstance(period_start, date) else str(period_start)
    key = "\x1f".join((tenant_id, period, charge_code, order_id or "", discrepancy))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# The same hash in SQL over a row with tenant_id, period_start, charge_code, order_id, discrepancy_type.
ADJUSTMENT_ID_SQL = (
    "left(encode(sha256(convert_to(concat_ws(chr(31), tenant_id, to_char(period_start, 'YYYY-MM-DD'), "
    "charge_code, coalesce(order_id, ''), discrepancy_type), 'UTF8')), 'hex'), 32)"
)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _num(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0",) else text


def _line_refs(row: dict) -> str:
    lines = row.get("billed_lines") or []
    if not lines:
        return ", ".join(row["billed_line_ids"])
    if len({ln["invoice_id"] for ln in lines}) == 1:
        return ", ".join(ln["line_id"] for ln in lines)
    return ", ".join(f"{ln['invoice_id']}/{ln['line_id']}" for ln in lines)


def reason_text(row: dict) -> str:
    """One sentence a finance person can send to the client."""
    what = f"{row['charge_code']}" + (f" for order {row['order_id']}" if row["order_id"] else "")
    cur = row["currency"]
    billed = f"{_money(row['billed_amount'])} {cur}"
    expected = f"{_money(row['expected_amount'])} {cur}"
    card = f" ({row['rate_card_id']} v{row['rate_card_version']})" if row.get("rate_card_id") else ""
    period = f"{row['period_start']:%Y-%m}"
    kind = row["discrepancy_type"]
    detail = row.get("pricing_detail") or {}
    if kind == "rate_mismatch" and row["charge_code"] == "SHIPPING" and detail.get("postage") is not None:
        exact = Decimal(str(detail["postage"]))
        postage = f"{exact:.2f}" if exact == exact.quantize(Decimal("0.01")) else _num(exact)
        markup = _num(Decimal(str(detail.get("markup_pct") or 0)))
        return (
            f"{what} billed {billed} for the label; its postage {postage} + {markup} % markup under the "
            f"contract{card} is {expected}."
        )
    if kind == "rate_mismatch":
        return (
            f"{what} billed {billed} at {_num(row['billed_unit_rate']) or 'mixed rates'} per unit; "
            "the contract "
            f"rate is {_num(row['expected_unit_rate'])}{card}, so {expected} is due."
        )
    if kind == "quantity_mismatch":
        return (
            f"{what} billed for quantity {_num(row['billed_quantity'])} ({billed}); the activity recorded is "
            f"{_num(row['expected_quantity'])}, so {expected} is due."
        )
    if kind == "duplicate_charge":
        times = row.get("net_line_count") or row["billed_line_count"]
        return f"{what} billed {times} times (lines {_line_refs(row)}, {billed} in total); it is due once: {expected}."
    if kind == "unexpected_charge":
        return f"{what} billed {billed}, but there is nothing to bill for it in {period} (e.g. cancelled)."
    if kind == "unbilled":
        return f"{what} was not billed on any invoice of {period}; {expected} is due under the contract{card}."
    if kind == "missing_sla_credit":
        return (
            f"{what}: the order missed its SLA (policy {row['sla_policy_id']} v{row['sla_policy_version']}); "
            f"the contract grants a credit of {_money(-row['expected_amount'])} {cur}, "
            f"which no invoice of {period} carries."
        )
    return f"{what}: billed {billed}, expected {expected}."


def evidence(row: dict) -> dict:
    """What supports the adjustment: billed lines (with their invoices), expected basis, source events,
    versions. Stable across runs (no build timestamps), so an unchanged discrepancy keeps an identical row."""
    return {
        "reconciliation_id": row["reconciliation_id"],
        "invoice_id": row["invoice_id"],
        "period": [row["period_start"].isoformat(), row["period_end"].isoformat()],
        "billed": {
            "invoice_ids": row.get("billed_invoice_ids") or [],
            "line_ids": row["billed_line_ids"],
            "lines": row.get("billed_lines") or [],
            "line_count": row["billed_line_count"],
            "net_line_count": row.get("net_line_count"),
            "quantity": _num(row["billed_quantity"]),
            "unit_rate": _num(row["billed_unit_rate"]),
            "amount": _money(row["billed_amount"]),
        },
        "expected": {
            "period_start": row["expected_period_start"].isoformat() if row["expected_period_start"] else None,
            "quantity": _num(row["expected_quantity"]),
            "unit_rate": _num(row["expected_unit_rate"]),
            "amount": _money(row["expected_amount"]),
            "rate_card_id": row["rate_card_id"],
            "rate_card_version": row["rate_card_version"],
            "tier_mode": row["tier_mode"],
            "tier": None if row["tier_min"] is None else {"min": row["tier_min"], "max": row["tier_max"]},
            "pricing_detail": row["pricing_detail"],
        },
        "delta_amount": _money(row["delta_amount"]),
        "tolerance_amount": _money(row["tolerance_amount"]),
        "source_event_ids": row["source_event_ids"] or [],
        "sla_policy": None
        if row["sla_policy_id"] is None
        else {
            "policy_id": row["sla_policy_id"],
            "policy_version": row["sla_policy_version"],
            "credit_terms_version": row["credit_terms_version"],
        },
    }


# ------------------------------------------------------------------------------------------------------------------
# Approval: the tenant's limit per adjustment, and the run guard


def _decimal(value: str | None, what: str, tenant: str) -> Decimal | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"tenants.csv: {what} of tenant {tenant!r} is not a number: {value!r}") from None
    if out < 0:
        raise ValueError(f"tenants.csv: {what} of tenant {tenant!r} is negative: {value!r}")
    return out


@dataclass(frozen=True)
class ApprovalPolicy:
    """A tenant's approval settings (seeds/tenants.csv): ``auto_approve_limit`` per adjustment (empty = a
    person decides every one), and the run guard, ``auto_approve_max_per_run`` adjustments and
    ``auto_approve_max_amount_per_run`` Σ|amount| per run (empty = the defaults, 20 and 500.00)."""

    auto_approve_limit: Decimal | None = None
    max_per_run: int = DEFAULT_MAX_PER_RUN
    max_amount_per_run: Decimal = DEFAULT_MAX_AMOUNT_PER_RUN

    @classmethod
    def from_tenant(cls, tenant: str, row: dict[str, str]) -> ApprovalPolicy:
        count = _decimal(row.get("auto_approve_max_per_run"), "auto_approve_max_per_run", tenant)
        if count is not None and count != count.to_integral_value():
            raise ValueError(f"tenants.csv: auto_approve_max_per_run of tenant {tenant!r} is not a whole number")
        amount = _decimal(row.get("auto_approve_max_amount_per_run"), "auto_approve_max_amount_per_run", tenant)
        return cls(
            auto_approve_limit=_decimal(row.get("auto_approve_limit"), "auto_approve_limit", tenant),
            max_per_run=DEFAULT_MAX_PER_RUN if count is None else int(count),
            max_amount_per_run=DEFAULT_MAX_AMOUNT_PER_RUN if amount is None else amount,
        )


@dataclass(frozen=True)
class Stored:
    """What ``actions.invoice_adjustments`` holds for an adjustment id before this run."""

    amount: Decimal
    approval_status: str
    approval_reason: str | None
    status: str


def approval_for(amount: Decimal, policy: ApprovalPolicy, stored: Stored | None) -> tuple[str, str]:
    """(approval_status, approval_reason) of one adjustment before the run guard."""
    if stored is not None and stored.amount == amount:
        if stored.approval_status in ("approved", "rejected"):
            return stored.approval_status, stored.approval_reason or "decided by a person"
        if stored.approval_status == "needs_review" and (stored.approval_reason or "").startswith(GUARD_PREFIX):
            return "needs_review", stored.approval_reason  # held by a run guard: a person decides
    limit = policy.auto_approve_limit
    if limit is None:
        return "needs_review", "no auto_approve_limit configured for the tenant: a person decides"
    if abs(amount) <= limit:
        return "auto_approved", f"|amount| {abs(amount):.2f} within the tenant's auto_approve_limit {limit:.2f}"
    return "needs_review", f"|amount| {abs(amount):.2f} above the tenant's auto_approve_limit {limit:.2f}"


def is_new_approval(status: str, amount: Decimal, stored: Stored | None) -> bool:
    """Whether this run would auto-approve the adjustment anew (not one already open and auto-approved at the same
    amount): what the run guard counts."""
    if status != "auto_approved":
        return False
    return not (
        stored is not None
        and stored.status == "open"
        and stored.approval_status == "auto_approved"
        and stored.amount == amount
    )


@dataclass(frozen=True)
class GuardTrip:
    """A tenant whose run would have auto-approved more than its guard allows."""

    tenant_id: str
    currency: str
    count: int
    amount_abs: Decimal
    amount_net: Decimal
    max_per_run: int
    max_amount_per_run: Decimal
    adjustment_ids: tuple[str, ...]
    invoices: tuple[str, ...]
    by_type: dict[str, int]

    @property
    def reason(self) -> str:
        return (
            f"{GUARD_PREFIX} this run would auto-approve {self.count} adjustments of {self.tenant_id} "
            f"(Σ|amount| {self.amount_abs:.2f} {self.currency}); one run may auto-approve at most "
            f"{self.max_per_run} or {self.max_amount_per_run:.2f} {self.currency}, so a person reviews them "
            "(mass findings point at a partial or missing invoice or a data problem)"
        )

    @property
    def subject_id(self) -> str:
        digest = hashlib.sha256("\x1f".join(sorted(self.adjustment_ids)).encode()).hexdigest()[:16]
        return f"{self.tenant_id}:{digest}"

    def facts(self) -> dict:
        return {
            "tenant_id": self.tenant_id,
            "adjustments_held": self.count,
            "amount_abs": f"{self.amount_abs:.2f}",
            "amount_net": f"{self.amount_net:.2f}",
            "currency": self.currency,
            "max_per_run": self.max_per_run,
            "max_amount_per_run": f"{self.max_amount_per_run:.2f}",
            "by_discrepancy_type": dict(sorted(self.by_type.items())),
            "invoices": list(self.invoices[:10]),
            "why": "mass findings are a symptom (a partial or missing invoice, a data problem), not money",
        }


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: str
    tenant_id: str
    invoice_id: str
    period_start: date
    charge_code: str
    order_id: str | None
    discrepancy_type: str
    kind: str
    reason_code: str
    reason: str
    amount: Decimal
    currency: str
    approval_status: str
    approval_reason: str
    evidence: dict

    @property
    def content_hash(self) -> str:
        body = json.dumps(
            [self.kind, self.reason_code, self.reason, str(self.amount), self.currency, self.evidence],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


def build_adjustment(row: dict, policy: ApprovalPolicy | None, stored: Stored | None = None) -> Adjustment:
    kind = "sla_credit" if row["discrepancy_type"] == "missing_sla_credit" else "correction"
    amount = row["expected_amount"] - row["billed_amount"]
    approval, why = approval_for(amount, policy or ApprovalPolicy(), stored)
    return Adjustment(
        adjustment_id=adjustment_id(
            row["tenant_id"], row["period_start"], row["charge_code"], row["order_id"], row["discrepancy_type"]
        ),
        tenant_id=row["tenant_id"],
        invoice_id=row["invoice_id"],
        period_start=row["period_start"],
        charge_code=row["charge_code"],
        order_id=row["order_id"],
        discrepancy_type=row["discrepancy_type"],
        kind=kind,
        reason_code=REASON_CODES[row["discrepancy_type"]],
        reason=reason_text(row),
        amount=amount,
        currency=row["currency"],
        approval_status=approval,
        approval_reason=why,
        evidence=evidence(row),
    )


def apply_run_guard(
    adjustments: list[Adjustment], stored: dict[str, Stored], policies: dict[str, ApprovalPolicy]
) -> tuple[list[Adjustment], list[GuardTrip]]:
    """Per tenant: when the adjustments this run would newly auto-approve exceed the tenant's guard (count or
    Σ|amount|), all of them go to ``needs_review`` with the guard's reason."""
    new: dict[str, list[Adjustment]] = defaultdict(list)
    for adj in adjustments:
        if is_new_approval(adj.approval_status, adj.amount, stored.get(adj.adjustment_id)):
            new[adj.tenant_id].append(adj)
    trips: dict[str, GuardTrip] = {}
    for tenant, batch in sorted(new.items()):
        policy = policies.get(tenant) or ApprovalPolicy()
        total = sum((abs(a.amount) for a in batch), Decimal("0.00"))
        if len(batch) <= policy.max_per_run and total <= policy.max_amount_per_run:
            continue
        by_type: dict[str, int] = defaultdict(int)
        for a in batch:
            by_type[a.discrepancy_type] += 1
        trips[tenant] = GuardTrip(
            tenant_id=tenant,
            currency=batch[0].currency,
            count=len(batch),
            amount_abs=total,
            amount_net=sum((a.amount for a in batch), Decimal("0.00")),
            max_per_run=policy.max_per_run,
            max_amount_per_run=policy.max_amount_per_run,
            adjustment_ids=tuple(sorted(a.adjustment_id for a in batch)),
            invoices=tuple(sorted({a.invoice_id for a in batch})),
            by_type=dict(by_type),
        )
    held = {a for trip in trips.values() for a in trip.adjustment_ids}
    out = [
        _replace(a, approval_status="needs_review", approval_reason=trips[a.tenant_id].reason)
        if a.adjustment_id in held
        else a
        for a in adjustments
    ]
    return out, list(trips.values())


def _replace(adj: Adjustment, **changes) -> Adjustment:
    return replace(adj, **changes)


# ------------------------------------------------------------------------------------------------------------------
# Writing


def _schema(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain schema name: {name!r}")
    return name


def discrepancies(engine: sa.Engine, marts_schema: str = "marts") -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    f"select * from {_schema(marts_schema)}.fct_invoice_reconciliation "
                    "where discrepancy_type <> 'matched' "
                    "order by tenant_id, period_start, charge_code, order_id"
                )
            ).mappings()
        ]


@dataclass
class SyncResult:
    adjustments: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    superseded: int = 0
    credits_total: Decimal = Decimal("0.00")
    corrections_total: Decimal = Decimal("0.00")
    needs_review: int = 0
    auto_approved_now: int = 0  # newly auto-approved by this run (a backtest: what the live rules would approve)
    held_by_guard: int = 0
    guard_trips: list[GuardTrip] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {
            "adjustments": self.adjustments,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "superseded": self.superseded,
            "needs_review": self.needs_review,
            "auto_approved_this_run": self.auto_approved_now,
            "held_by_run_guard": self.held_by_guard,
            "run_guard_tenants": ", ".join(t.tenant_id for t in self.guard_trips),
            "sla_credits_total": float(self.credits_total),
            "corrections_total": float(self.corrections_total),
        }


_UPSERT = """
    insert into {actions}.invoice_adjustments as a
      (adjustment_id, tenant_id, invoice_id, period_start, charge_code, order_id, discrepancy_type, kind,
       reason_code, reason, amount, currency, approval_status, approval_reason, status, evidence, content_hash)
    values
      (:adjustment_id, :tenant_id, :invoice_id, :period_start, :charge_code, :order_id, :discrepancy_type, :kind,
       :reason_code, :reason, :amount, :currency, :approval_status, :approval_reason, 'open',
       cast(:evidence as jsonb), :content_hash)
    on conflict (adjustment_id) do update set
        invoice_id = excluded.invoice_id,
        period_start = excluded.period_start,
        kind = excluded.kind,
        reason_code = excluded.reason_code,
        reason = excluded.reason,
        amount = excluded.amount,
        currency = excluded.currency,
        -- a person's decision made since this run read the row is kept while the amount is unchanged
        approval_status = case
            when a.approval_status in ('approved', 'rejected') and a.amount = excluded.amount
                then a.approval_status
            else excluded.approval_status
        end,
        approval_reason = case
            when a.approval_status in ('approved', 'rejected') and a.amount = excluded.amount
                then a.approval_reason
            else excluded.approval_reason
        end,
        status = 'open',
        superseded_at = null,
        evidence = excluded.evidence,
        content_hash = excluded.content_hash,
        updated_at = now()
    where a.content_hash is distinct from excluded.content_hash
       or a.status <> 'open'
       or a.invoice_id <> excluded.invoice_id
       or (a.approval_status not in ('approved', 'rejected')
           and (a.approval_status <> excluded.approval_status
                or a.approval_reason is distinct from excluded.approval_reason))
    returning (xmax = 0) as inserted
"""

_COLUMNS = (
    "adjustment_id",
    "tenant_id",
    "invoice_id",
    "period_start",
    "charge_code",
    "order_id",
    "discrepancy_type",
    "kind",
    "reason_code",
    "reason",
    "amount",
    "currency",
    "approval_status",
    "approval_reason",
)


def _stored(conn: sa.Connection, actions: str, ids: list[str]) -> dict[str, Stored]:
    rows = conn.execute(
        sa.text(
            f"select adjustment_id, amount, approval_status, approval_reason, status "
            f"from {actions}.invoice_adjustments where adjustment_id = any(:ids)"
        ),
        {"ids": ids},
    ).all()
    return {r[0]: Stored(r[1], r[2], r[3], r[4]) for r in rows}


def sync_adjustments(
    engine: sa.Engine,
    reference: Reference | None = None,
    *,
    marts_schema: str = "marts",
    actions_schema: str = "actions",
    backtest: bool = False,
    notify_enabled: bool = False,
) -> SyncResult:
    """Write the adjustments of the current reconciliation (``<marts_schema>``) into ``<actions_schema>``;
    supersede the ones whose discrepancy is gone; hold back a run's mass auto-approvals (the run guard) and
    record one notification per tenant it held (``pending`` when ``notify_enabled``, else ``skipped``).
    ``backtest``: nothing is ever approved and nothing is notified."""
    from e2a_dagster.lib.actions import notify

    reference = reference or Reference.load()
    actions = _schema(actions_schema)
    policies = {tenant: ApprovalPolicy.from_tenant(tenant, row) for tenant, row in reference.tenants.items()}
    rows = discrepancies(engine, marts_schema)
    ids = [
        adjustment_id(r["tenant_id"], r["period_start"], r["charge_code"], r["order_id"], r["discrepancy_type"])
        for r in rows
    ]
    result = SyncResult(adjustments=len(rows))
    with engine.begin() as conn:
        conn.execute(
            sa.text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"{actions}.invoice_adjustments"}
        )
        stored = {} if backtest else _stored(conn, actions, ids)
        adjustments = [
            build_adjustment(row, policies.get(row["tenant_id"]), stored.get(aid))
            for row, aid in zip(rows, ids, strict=True)
        ]
        adjustments, trips = apply_run_guard(adjustments, stored, policies)
        result.guard_trips = trips
        result.held_by_guard = sum(t.count for t in trips)
        # What this run auto-approves (a backtest: what the live rules would have auto-approved).
        result.auto_approved_now = sum(
            is_new_approval(a.approval_status, a.amount, stored.get(a.adjustment_id)) for a in adjustments
        )
        if backtest:
            adjustments = [
                _replace(
                    a,
                    approval_status="needs_review",
                    approval_reason=f"{BACKTEST_PREFIX} never approved; live would be {a.approval_status} "
                    f"({a.approval_reason})",
                )
                for a in adjustments
            ]
        upsert = sa.text(_UPSERT.format(actions=actions))
        for adj in adjustments:
            row = conn.execute(
                upsert,
                {
                    **{k: getattr(adj, k) for k in _COLUMNS},
                    "evidence": json.dumps(adj.evidence, sort_keys=True, default=str),
                    "content_hash": adj.content_hash,
                },
            ).first()
            if row is None:
                result.unchanged += 1
            elif row.inserted:
                result.inserted += 1
            else:
                result.updated += 1
            if adj.kind == "sla_credit":
                result.credits_total += adj.amount
            else:
                result.corrections_total += adj.amount
            result.needs_review += adj.approval_status == "needs_review"
        result.superseded = conn.execute(
            sa.text(
                f"""
                update {actions}.invoice_adjustments
                   set status = 'superseded', superseded_at = now(), updated_at = now()
                 where status = 'open' and not (adjustment_id = any(:ids))
                """
            ),
            {"ids": [a.adjustment_id for a in adjustments]},
        ).rowcount
        if not backtest:
            for trip in trips:
                notify.record_notification(
                    conn,
                    kind=notify.KIND_APPROVAL_GUARD,
                    subject_id=trip.subject_id,
                    tenant_id=trip.tenant_id,
                    title=(
                        f"Invoice auto-approval held for {trip.tenant_id}: {trip.count} adjustments "
                        f"(Σ|amount| {trip.amount_abs:.2f} {trip.currency}) in one run need review"
                    ),
                    facts=trip.facts(),
                    enabled=notify_enabled,
                )
    return result
