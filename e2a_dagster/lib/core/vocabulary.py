"""The words E²A's tables use, each list once (DESIGN §5, §6). dbt's SQL spells them too (a ``case`` and an
``accepted_values`` test per column): ``tests/unit/test_vocabulary.py`` checks those against these lists, so a
word added on one side only fails a test instead of drifting."""

from __future__ import annotations

# marts.fct_sla_evaluations
SLA_STAGES = ("pick", "pack", "ship", "deliver")
SLA_STATUSES = ("met", "late", "overdue", "at_risk", "on_track", "cancelled")
SEVERITIES = ("minor", "major", "critical")
DUE_SOURCES = ("promise", "policy")

# marts.fct_sla_exceptions
EXCEPTION_STATUSES = ("at_risk", "open", "resolved", "cancelled")

# marts.fct_invoice_reconciliation: `matched` and the findings an adjustment is made for
DISCREPANCY_TYPES = (
    "matched",
    "rate_mismatch",
    "quantity_mismatch",
    "duplicate_charge",
    "unexpected_charge",
    "unbilled",
    "missing_sla_credit",
)
FINDINGS = tuple(t for t in DISCREPANCY_TYPES if t != "matched")

# marts.fct_expected_charges
PERIOD_STATUSES = ("closed", "invoiced", "open")

# Charge codes: what one order's activity is billed as (metered, priced by the rate card), the rate card's codes
# (those plus the period's minimum), and an invoice line's (those plus the credit a 3PL may bill itself)
METERED_CHARGE_CODES = ("ORDER_FEE", "PICK_UNIT", "PACK_CARTON", "SHIPPING", "RETURN_FEE")
RATE_CARD_CHARGE_CODES = (*METERED_CHARGE_CODES, "MONTHLY_MINIMUM")
INVOICE_CHARGE_CODES = (*RATE_CARD_CHARGE_CODES, "SLA_CREDIT")
