"""Invoice adjustments (DESIGN §6): one per reconciliation row that is not ``matched``, written to
``actions.invoice_adjustments`` idempotently.

- ``adjustment_id`` = hash of (tenant, invoice, charge code, order, discrepancy type): the same discrepancy
  keeps its id across runs. ``amount`` = expected − billed (negative = credit to the client).
- Upsert: a row is rewritten only when its content changes (amount, evidence, reason, ...), so a second run
  over the same data changes nothing, not even ``updated_at``.
- A discrepancy that disappeared (the invoice was corrected, new events changed what is expected) is marked
  ``status = 'superseded'`` with ``superseded_at``, never deleted: what finance saw stays auditable. If it
  comes back, the same row is reopened.
- ``approval_status``: ``auto_approved`` when |amount| <= the tenant's ``auto_approve_limit``, else
  ``needs_review``. A person's decision (``approved`` / ``rejected``) is kept while the amount is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from e2a_dagster.lib.reference import Reference

REASON_CODES = {
    "rate_mismatch": "RATE_MISMATCH",
    "quantity_mismatch": "QUANTITY_MISMATCH",
    "duplicate_charge": "DUPLICATE_CHARGE",
    "unexpected_charge": "UNEXPECTED_CHARGE",
    "unbilled": "UNBILLED_CHARGE",
    "missing_sla_credit": "MISSING_SLA_CREDIT",
}


def adjustment_id(tenant_id: str, invoice_id: str, charge_code: str, order_id: str | None, discrepancy: str) -> str:
    key = "\x1f".join((tenant_id, invoice_id, charge_code, order_id or "", discrepancy))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _num(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0",) else text


def reason_text(row: dict) -> str:
    """One sentence a finance person can send to the client."""
    what = f"{row['charge_code']}" + (f" for order {row['order_id']}" if row["order_id"] else "")
    cur = row["currency"]
    billed = f"{_money(row['billed_amount'])} {cur}"
    expected = f"{_money(row['expected_amount'])} {cur}"
    card = f" ({row['rate_card_id']} v{row['rate_card_version']})" if row.get("rate_card_id") else ""
    kind = row["discrepancy_type"]
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
        return (
            f"{what} billed {row['billed_line_count']} times (lines {', '.join(row['billed_line_ids'])}, "
            f"{billed} in total); it is due once: {expected}."
        )
    if kind == "unexpected_charge":
        return f"{what} billed {billed}, but there is nothing to bill for it in this period (e.g. cancelled)."
    if kind == "unbilled":
        return f"{what} was not billed; {expected} is due under the contract{card}."
    if kind == "missing_sla_credit":
        return (
            f"{what}: the order missed its SLA (policy {row['sla_policy_id']} v{row['sla_policy_version']}); "
            f"the contract grants a credit of {_money(-row['expected_amount'])} {cur}, "
            "which the invoice omits."
        )
    return f"{what}: billed {billed}, expected {expected}."


def evidence(row: dict) -> dict:
    """What supports the adjustment: billed lines, expected basis, source events, versions. Stable across runs
    (no build timestamps), so an unchanged discrepancy keeps an identical row."""
    return {
        "reconciliation_id": row["reconciliation_id"],
        "invoice_period": [row["period_start"].isoformat(), row["period_end"].isoformat()],
        "billed": {
            "line_ids": row["billed_line_ids"],
            "line_count": row["billed_line_count"],
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


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: str
    tenant_id: str
    invoice_id: str
    charge_code: str
    order_id: str | None
    discrepancy_type: str
    kind: str
    reason_code: str
    reason: str
    amount: Decimal
    currency: str
    approval_status: str
    evidence: dict

    @property
    def content_hash(self) -> str:
        body = json.dumps(
            [self.kind, self.reason_code, self.reason, str(self.amount), self.currency, self.evidence],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


def build_adjustment(row: dict, auto_approve_limit: Decimal | None) -> Adjustment:
    kind = "sla_credit" if row["discrepancy_type"] == "missing_sla_credit" else "correction"
    amount = row["expected_amount"] - row["billed_amount"]
    if auto_approve_limit is not None and abs(amount) <= auto_approve_limit:
        approval = "auto_approved"
    else:
        approval = "needs_review"  # no limit configured: a person decides (no invented threshold)
    return Adjustment(
        adjustment_id=adjustment_id(
            row["tenant_id"], row["invoice_id"], row["charge_code"], row["order_id"], row["discrepancy_type"]
        ),
        tenant_id=row["tenant_id"],
        invoice_id=row["invoice_id"],
        charge_code=row["charge_code"],
        order_id=row["order_id"],
        discrepancy_type=row["discrepancy_type"],
        kind=kind,
        reason_code=REASON_CODES[row["discrepancy_type"]],
        reason=reason_text(row),
        amount=amount,
        currency=row["currency"],
        approval_status=approval,
        evidence=evidence(row),
    )


def discrepancies(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select * from marts.fct_invoice_reconciliation where discrepancy_type <> 'matched' "
                    "order by tenant_id, invoice_id, charge_code, order_id"
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

    def as_metadata(self) -> dict:
        return {
            "adjustments": self.adjustments,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "superseded": self.superseded,
            "needs_review": self.needs_review,
            "sla_credits_total": float(self.credits_total),
            "corrections_total": float(self.corrections_total),
        }


_UPSERT = sa.text(
    """
    insert into actions.invoice_adjustments as a
      (adjustment_id, tenant_id, invoice_id, charge_code, order_id, discrepancy_type, kind, reason_code,
       reason,
       amount, currency, approval_status, status, evidence, content_hash)
    values
      (:adjustment_id, :tenant_id, :invoice_id, :charge_code, :order_id, :discrepancy_type, :kind,
       :reason_code,
       :reason, :amount, :currency, :approval_status, 'open', cast(:evidence as jsonb), :content_hash)
    on conflict (adjustment_id) do update set
        kind = excluded.kind,
        reason_code = excluded.reason_code,
        reason = excluded.reason,
        amount = excluded.amount,
        currency = excluded.currency,
        approval_status = case
            when a.approval_status in ('approved', 'rejected') and a.amount = excluded.amount
                then a.approval_status
            else excluded.approval_status
        end,
        status = 'open',
        superseded_at = null,
        evidence = excluded.evidence,
        content_hash = excluded.content_hash,
        updated_at = now()
    where a.content_hash is distinct from excluded.content_hash
       or a.status <> 'open'
       or (a.approval_status not in ('approved', 'rejected')
           and a.approval_status <> excluded.approval_status)
    returning (xmax = 0) as inserted
    """
)


def sync_adjustments(engine: sa.Engine, reference: Reference | None = None) -> SyncResult:
    """Write the adjustments of the current reconciliation; supersede the ones whose discrepancy is gone."""
    reference = reference or Reference.load()
    limits = {
        tenant: (Decimal(row["auto_approve_limit"]) if row.get("auto_approve_limit") else None)
        for tenant, row in reference.tenants.items()
    }
    adjustments = [build_adjustment(row, limits.get(row["tenant_id"])) for row in discrepancies(engine)]
    result = SyncResult(adjustments=len(adjustments))
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtextextended('actions.invoice_adjustments', 0))"))
        for adj in adjustments:
            row = conn.execute(
                _UPSERT,
                {
                    **{
                        k: getattr(adj, k)
                        for k in (
                            "adjustment_id",
                            "tenant_id",
                            "invoice_id",
                            "charge_code",
                            "order_id",
                            "discrepancy_type",
                            "kind",
                            "reason_code",
                            "reason",
                            "amount",
                            "currency",
                            "approval_status",
                        )
                    },
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
        current = [a.adjustment_id for a in adjustments]
        result.superseded = conn.execute(
            sa.text(
                """
                update actions.invoice_adjustments
                   set status = 'superseded', superseded_at = now(), updated_at = now()
                 where status = 'open' and not (adjustment_id = any(:ids))
                """
            ),
            {"ids": current},
        ).rowcount
    return result
