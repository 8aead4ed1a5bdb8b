"""The simulator's supplementary invoices (issue 16): a month billed in two invoices bills exactly what one
invoice would, and the answer key names the invoice DESIGN §6 gives each error."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from e2a_dagster.lib.simulator.sim_billing import Invoice, Line, RateCards, supplementary_invoices

D = Decimal


def one_month() -> tuple[Invoice, list[dict]]:
    inv = Invoice("INV-ACME-203001-T", "acme", "USD", date(2030, 1, 1), date(2030, 1, 31))
    for n in range(1, 41):
        inv.lines.append(Line("ORDER_FEE", f"O{n}", D(1), D("2.50"), D("2.50")))
        inv.lines.append(Line("PICK_UNIT", f"O{n}", D(2), D("0.35"), D("0.70")))
    inv.lines.append(Line("ORDER_FEE", "O7", D(1), D("2.50"), D("2.50")))  # the injected duplicate: line 00081
    inv.lines.append(Line("MONTHLY_MINIMUM", None, D(1), D("115.00"), D("115.00")))
    truth = [
        {"invoice_id": inv.invoice_id, "charge_code": "ORDER_FEE", "order_id": "O7", "line_id": "00081"}
        | {"discrepancy_type": "duplicate_charge"},
        {"invoice_id": inv.invoice_id, "charge_code": "SHIPPING", "order_id": "O9", "line_id": None}
        | {"discrepancy_type": "unbilled"},
        {"invoice_id": inv.invoice_id, "charge_code": "PICK_UNIT", "order_id": "O3", "line_id": "00006"}
        | {"discrepancy_type": "quantity_mismatch"},
    ]
    return inv, truth


def net(invoices: list[Invoice]) -> dict:
    out: dict = defaultdict(lambda: [D(0), 0])
    for inv in invoices:
        for ln in inv.lines:
            sign = -1 if ln.amount < 0 else 1
            out[(ln.charge_code, ln.order_id)][0] += ln.amount
            out[(ln.charge_code, ln.order_id)][1] += sign
    return {k: tuple(v) for k, v in out.items()}


def test_two_invoices_bill_what_one_would_and_the_truth_follows_design():
    main, truth = one_month()
    before = net([main])
    end = datetime(2030, 2, 10, tzinfo=UTC)
    (supp,) = supplementary_invoices([main], truth, random.Random(3), end=end, cards=RateCards(), share=0.05)
    assert supp.invoice_id == "INV-ACME-203001-T-S" and supp.invoice_date == date(2030, 2, 5)
    assert main.invoice_date == date(2030, 2, 1)
    assert net([main, supp]) == before  # same money and net line count per (charge, order)
    # 5 % of 82 lines moved (4), a reversal and its rebill (2), the duplicate's second line (1)
    assert len(supp.lines) == 7 and len(main.lines) == 82 - 4 - 1
    assert sum(1 for ln in supp.lines if ln.amount < 0) == 1
    assert [ln.line_id for ln in supp.lines] == [f"S{n:04d}" for n in range(1, 8)]
    # the main invoice keeps its line ids: the error on line 00006 is still there
    assert any(ln.line_id == "00006" and ln.order_id == "O3" for ln in main.lines)
    by_type = {r["discrepancy_type"]: r for r in truth}
    assert by_type["unbilled"]["invoice_id"] == supp.invoice_id  # nothing billed it: the period's latest invoice
    assert by_type["duplicate_charge"]["invoice_id"] == supp.invoice_id  # the latest invoice billing it
    assert by_type["duplicate_charge"]["line_id"] == "S0007"
    assert by_type["quantity_mismatch"]["invoice_id"] == main.invoice_id
    moved = {(ln.charge_code, ln.order_id) for ln in supp.lines}
    assert ("PICK_UNIT", "O3") not in moved and ("SHIPPING", "O9") not in moved


def test_no_supplementary_invoice_before_it_is_dated():
    main, truth = one_month()
    end = datetime(2030, 2, 4, 12, tzinfo=UTC)  # 07:00 in New York on 02-04: the supplementary is dated 02-05
    assert supplementary_invoices([main], truth, random.Random(3), end=end, cards=RateCards(), share=0.05) == []
    assert len(main.lines) == 82 and {r["invoice_id"] for r in truth} == {main.invoice_id}
