"""Invoice guard end to end on the real PostgreSQL and a real dbt build (DESIGN §6), with hand-computed money.

Tenant acme (USD, America/New_York; NJ1 closes 18:00, cutoff 14:00). Rate card acme_standard v1:
ORDER_FEE 2.50 (≤ 1,000 orders a month), PICK_UNIT 0.35, PACK_CARTON 0.60, SHIPPING postage + 10 %
billed per label (quantity 1, unit rate = amount), RETURN_FEE 3.95,
MONTHLY_MINIMUM 250.00; SLA credit 100 % of ORDER_FEE per late ship, capped at 10 % of the subtotal; tolerance
0.01; auto-approve up to 25.00. The orders live in March and April 2031, months no other test uses, so the
monthly minimum, tiers and cap below are exact.

March 2031 (EDT, -04:00):
  A1 paid Mon 03-17 09:00, handed 16:30 (ship met): 3 units, 1 carton, postage 7.35, returned 03-25
     ORDER_FEE 2.50, PICK_UNIT 3 × 0.35 = 1.05, PACK_CARTON 0.60, SHIPPING 7.35 × 1.10 = 8.085 → 8.09,
     RETURN_FEE 3.95
  A2 paid 03-17 09:00, handed Tue 03-18 10:00 (ship late: due 03-17 18:00): 2 units, 2 cartons, postage 5.00
     2.50, 0.70, 1.20, 5.50, SLA_CREDIT −2.50 (the invoice bills its label at 5.75, a 15 % markup: rate_mismatch)
  A3 paid 03-18 09:00, handed 16:00 (met): 1 unit, pack event without cartons (→ 1), postage 4.25
     2.50, 0.35, 0.60, 4.25 × 1.10 = 4.675 → 4.68
  A4 cancelled before picking: nothing to bill
  A7 paid Mon 03-31 09:00, handed 03-31 23:30 EDT (= 04-01 03:30 UTC: still March locally; late): 2 units,
     1 carton, postage 6.00 → 2.50, 0.70, 0.60, 6.60, SLA_CREDIT −2.50
  fees excl. SHIPPING = 10.00 + 2.80 + 3.00 + 3.95 = 19.75 → MONTHLY_MINIMUM 250.00 − 19.75 = 230.25
  subtotal = 250.00 + 24.87 = 274.87, cap 27.49 > credits 5.00: not capped
April 2031:
  A6 paid Mon 03-31 15:00 (after cutoff: due Tue 04-01 18:00), picked in March, handed 04-01 10:00 (met):
     billed in April (the month it shipped): 2.50, 0.35, 0.60, 5.50
  L01..L14 paid 09:00, handed the next business day 10:00 (late): each 2.50, 0.35, 0.60, 5.50
  15 orders: fees 15 × 3.45 = 51.75 → MONTHLY_MINIMUM 198.25; shipping 82.50; subtotal 332.50 → cap 33.25
  credits 14 × 2.50 = 35.00 > 33.25: each 2.50 × 33.25 / 35.00 = 2.375 → 2.38 (half-up);
  13 × 2.38 = 30.94, so the last by order id (L14) gets 33.25 − 30.94 = 2.31.
"""

from __future__ import annotations

import json
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.invoicing.adjustments import sync_adjustments
from e2a_dagster.lib.invoicing.billing import ingest_billing_file
from tests.invoice_helpers import event, shipped_order, write_events, write_invoice, write_warehouse_calendar

AS_OF = "2031-06-01T00:00:00+00:00"
D = Decimal
MARCH = ("2031-03-01", "2031-03-31")
APRIL = ("2031-04-01", "2031-04-30")
LATE_DAYS = ["2031-04-01", "2031-04-02", "2031-04-03", "2031-04-07", "2031-04-08", "2031-04-09"]
NEXT_DAY = {
    "2031-04-01": "2031-04-02",
    "2031-04-02": "2031-04-03",
    "2031-04-03": "2031-04-04",
    "2031-04-07": "2031-04-08",
    "2031-04-08": "2031-04-09",
    "2031-04-09": "2031-04-10",
}


def dbt_build(pg_info, select: str) -> None:
    run_dbt(
        [
            "build",
            "--select",
            select,
            "--exclude",
            "resource_type:seed",
            "--vars",
            json.dumps({"as_of": AS_OF}),
        ],
        pg_info,
    )


@pytest.fixture(scope="module")
def guard(engine, pg_info, reference, dbt_seeded, tmp_path_factory):
    """Events, invoices, calendar, one dbt build of everything the reconciliation needs."""
    import uuid

    p = f"IG{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("invoice-guard")
    events = []
    events += shipped_order(
        f"{p}-A1",
        paid="2031-03-17T09:00:00-04:00",
        handed="2031-03-17T16:30:00-04:00",
        units=3,
        cartons=1,
        postage="7.35",
    )
    events.append(event(f"{p}-A1", "return_received", "wms", "2031-03-25T12:00:00-04:00", warehouse_id="NJ1"))
    events += shipped_order(
        f"{p}-A2",
        paid="2031-03-17T09:00:00-04:00",
        handed="2031-03-18T10:00:00-04:00",
        units=2,
        cartons=2,
        postage="5.00",
    )
    events += shipped_order(
        f"{p}-A3",
        paid="2031-03-18T09:00:00-04:00",
        handed="2031-03-18T16:00:00-04:00",
        units=1,
        cartons=None,
        postage="4.25",
    )
    events += [
        event(f"{p}-A4", "order_created", "oms", "2031-03-19T08:55:00-04:00", units=1),
        event(f"{p}-A4", "order_paid", "oms", "2031-03-19T09:00:00-04:00"),
        event(f"{p}-A4", "order_cancelled", "oms", "2031-03-19T10:00:00-04:00"),
    ]
    events += shipped_order(
        f"{p}-A7",
        paid="2031-03-31T09:00:00-04:00",
        handed="2031-03-31T23:30:00-04:00",
        units=2,
        cartons=1,
        postage="6.00",
    )
    events += shipped_order(
        f"{p}-A6",
        paid="2031-03-31T15:00:00-04:00",
        handed="2031-04-01T10:00:00-04:00",
        units=1,
        cartons=1,
        postage="5.00",
    )
    for n in range(1, 15):
        day = LATE_DAYS[(n - 1) % len(LATE_DAYS)]
        events += shipped_order(
            f"{p}-L{n:02d}",
            paid=f"{day}T09:00:00-04:00",
            handed=f"{NEXT_DAY[day]}T10:00:00-04:00",
            units=1,
            cartons=1,
            postage="5.00",
        )
    loaded = ingest_file(engine, write_events(folder / f"{p}.jsonl", events), reference)
    assert loaded.rejected == 0, loaded.reject_codes
    write_warehouse_calendar(engine)

    march = [
        ("0001", "ORDER_FEE", f"{p}-A1", "1", "2.50", "2.50"),
        ("0002", "PICK_UNIT", f"{p}-A1", "3", "0.40", "1.20"),
        ("0003", "PACK_CARTON", f"{p}-A1", "1", "0.90", "0.90"),
        ("0004", "SHIPPING", f"{p}-A1", "1", "8.09", "8.09"),
        ("0005", "RETURN_FEE", f"{p}-A1", "1", "3.95", "3.95"),
        ("0006", "ORDER_FEE", f"{p}-A2", "1", "2.50", "2.50"),
        ("0007", "PICK_UNIT", f"{p}-A2", "3", "0.35", "1.05"),
        ("0008", "PACK_CARTON", f"{p}-A2", "2", "0.60", "1.20"),
        ("0009", "SHIPPING", f"{p}-A2", "1", "5.75", "5.75"),  # markup 15 % instead of 10 %
        ("0010", "SLA_CREDIT", f"{p}-A2", "1", "-2.50", "-2.50"),
        ("0011", "ORDER_FEE", f"{p}-A3", "1", "2.50", "2.50"),
        ("0012", "ORDER_FEE", f"{p}-A3", "1", "2.50", "2.50"),
        ("0013", "PICK_UNIT", f"{p}-A3", "1", "0.35", "0.35"),
        ("0014", "PACK_CARTON", f"{p}-A3", "1", "0.60", "0.60"),
        ("0015", "SHIPPING", f"{p}-A3", "1", "4.67", "4.67"),
        ("0016", "ORDER_FEE", f"{p}-A4", "1", "2.50", "2.50"),
        ("0017", "ORDER_FEE", f"{p}-A7", "1", "2.50", "2.50"),
        ("0018", "PICK_UNIT", f"{p}-A7", "2", "0.35", "0.70"),
        ("0019", "PACK_CARTON", f"{p}-A7", "1", "0.60", "0.60"),
        ("0020", "MONTHLY_MINIMUM", None, "1", "260.25", "260.25"),
    ]
    april = []
    n = 0
    for order in ["A6"] + [f"L{i:02d}" for i in range(1, 15)]:
        for charge, qty, rate, amount in [
            ("ORDER_FEE", "1", "2.50", "2.50"),
            ("PICK_UNIT", "1", "0.35", "0.35"),
            ("PACK_CARTON", "1", "0.60", "0.60"),
            ("SHIPPING", "1", "5.50", "5.50"),
        ]:
            n += 1
            april.append((f"{n:04d}", charge, f"{p}-{order}", qty, rate, amount))
    n += 1
    april.append((f"{n:04d}", "MONTHLY_MINIMUM", None, "1", "198.25", "198.25"))
    for i in range(1, 15):
        n += 1
        credit = "-2.31" if i == 14 else "-2.38"
        april.append((f"{n:04d}", "SLA_CREDIT", f"{p}-L{i:02d}", "1", credit, credit))

    inv_march, inv_april = f"INV-{p}-203103", f"INV-{p}-203104"
    billing = folder / "billing"
    billing.mkdir()
    files = [
        write_invoice(billing / f"{inv_march}.csv", inv_march, MARCH, march),
        write_invoice(billing / f"{inv_april}.csv", inv_april, APRIL, april),
        # The billing system re-sends line 0003 corrected: the new version supersedes the old one.
        write_invoice(
            billing / f"{inv_march}-fix.csv",
            inv_march,
            MARCH,
            [("0003", "PACK_CARTON", f"{p}-A1", "1", "0.60", "0.60")],
        ),
    ]
    results = [ingest_billing_file(engine, f, reference) for f in files]
    assert [(r.loaded, r.rejected, r.superseding) for r in results] == [(20, 0, 0), (75, 0, 0), (1, 0, 1)]
    dbt_build(pg_info, "+fct_invoice_reconciliation")
    return {"p": p, "march": inv_march, "april": inv_april, "folder": folder}


def _expected(engine, p: str, period: str) -> dict[tuple[str, str | None], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
            select charge_code, order_id, quantity, unit_rate, amount, rate_card_version
            from marts.fct_expected_charges
            where tenant_id = 'acme' and period_start = :period
            """
            ),
            {"period": period},
        ).all()
    out = {}
    for charge, order_id, qty, _rate, amount, version in rows:
        key = (charge, order_id.removeprefix(p + "-") if order_id else None)
        out[key] = (qty.normalize(), amount, version)
    return out


def test_expected_charges_for_march_by_hand(engine, guard):
    got = _expected(engine, guard["p"], "2031-03-01")
    one = D(1)
    assert got == {
        ("ORDER_FEE", "A1"): (one, D("2.50"), 1),
        ("PICK_UNIT", "A1"): (D(3), D("1.05"), 1),
        ("PACK_CARTON", "A1"): (one, D("0.60"), 1),
        ("SHIPPING", "A1"): (one, D("8.09"), 1),
        ("RETURN_FEE", "A1"): (one, D("3.95"), 1),
        ("ORDER_FEE", "A2"): (one, D("2.50"), 1),
        ("PICK_UNIT", "A2"): (D(2), D("0.70"), 1),
        ("PACK_CARTON", "A2"): (D(2), D("1.20"), 1),
        ("SHIPPING", "A2"): (one, D("5.50"), 1),
        ("SLA_CREDIT", "A2"): (one, D("-2.50"), None),
        ("ORDER_FEE", "A3"): (one, D("2.50"), 1),
        ("PICK_UNIT", "A3"): (one, D("0.35"), 1),
        ("PACK_CARTON", "A3"): (one, D("0.60"), 1),
        ("SHIPPING", "A3"): (one, D("4.68"), 1),
        ("ORDER_FEE", "A7"): (one, D("2.50"), 1),
        ("PICK_UNIT", "A7"): (D(2), D("0.70"), 1),
        ("PACK_CARTON", "A7"): (one, D("0.60"), 1),
        ("SHIPPING", "A7"): (one, D("6.60"), 1),
        ("SLA_CREDIT", "A7"): (one, D("-2.50"), None),
        ("MONTHLY_MINIMUM", None): (one, D("230.25"), 1),
    }


def test_expected_charges_for_april_cap_and_next_month_billing(engine, guard):
    got = _expected(engine, guard["p"], "2031-04-01")
    # A6 was picked in March but shipped in April: billed in April.
    assert got[("ORDER_FEE", "A6")] == (D(1), D("2.50"), 1)
    assert got[("SHIPPING", "A6")] == (D(1), D("5.50"), 1)
    assert got[("MONTHLY_MINIMUM", None)] == (D(1), D("198.25"), 1)
    credits = {k[1]: v[1] for k, v in got.items() if k[0] == "SLA_CREDIT"}
    assert credits == {**{f"L{i:02d}": D("-2.38") for i in range(1, 14)}, "L14": D("-2.31")}
    assert sum(credits.values()) == D("-33.25")
    assert len(got) == 15 * 4 + 1 + 14
    with engine.connect() as conn:
        detail = conn.execute(
            sa.text(
                "select uncapped_amount, pricing_detail from marts.fct_expected_charges "
                "where order_id = :o and charge_code = 'SLA_CREDIT'"
            ),
            {"o": f"{guard['p']}-L14"},
        ).one()
    assert detail.uncapped_amount == D("2.50")
    assert detail.pricing_detail["is_capped"] is True
    assert D(str(detail.pricing_detail["cap_amount"])) == D("33.25")
    assert detail.pricing_detail["stages"][0]["policy_id"] is not None


def _reconciliation(engine, p: str, invoice: str) -> dict[tuple[str, str | None], tuple[str, Decimal]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select charge_code, order_id, discrepancy_type, delta_amount "
                "from marts.fct_invoice_reconciliation "
                "where invoice_id = :i"
            ),
            {"i": invoice},
        ).all()
    return {(c, o.removeprefix(p + "-") if o else None): (t, d) for c, o, t, d in rows}


def test_reconciliation_finds_every_discrepancy_type(engine, guard):
    got = _reconciliation(engine, guard["p"], guard["march"])
    zero = D("0.00")
    assert got == {
        ("ORDER_FEE", "A1"): ("matched", zero),
        ("PICK_UNIT", "A1"): ("rate_mismatch", D("0.15")),
        ("PACK_CARTON", "A1"): ("matched", zero),  # the corrected version of line 0003 is the current one
        ("SHIPPING", "A1"): ("matched", zero),
        ("RETURN_FEE", "A1"): ("matched", zero),
        ("ORDER_FEE", "A2"): ("matched", zero),
        ("PICK_UNIT", "A2"): ("quantity_mismatch", D("0.35")),
        ("PACK_CARTON", "A2"): ("matched", zero),
        ("SHIPPING", "A2"): ("rate_mismatch", D("0.25")),  # per label: same quantity 1, other amount
        ("SLA_CREDIT", "A2"): ("matched", zero),
        ("ORDER_FEE", "A3"): ("duplicate_charge", D("2.50")),
        ("PICK_UNIT", "A3"): ("matched", zero),
        ("PACK_CARTON", "A3"): ("matched", zero),
        ("SHIPPING", "A3"): ("matched", D("-0.01")),  # within the 0.01 tolerance
        ("ORDER_FEE", "A4"): ("unexpected_charge", D("2.50")),  # cancelled order
        ("ORDER_FEE", "A7"): ("matched", zero),
        ("PICK_UNIT", "A7"): ("matched", zero),
        ("PACK_CARTON", "A7"): ("matched", zero),
        ("SHIPPING", "A7"): ("unbilled", D("-6.60")),
        ("SLA_CREDIT", "A7"): ("missing_sla_credit", D("2.50")),
        ("MONTHLY_MINIMUM", None): ("rate_mismatch", D("30.00")),
    }


def test_correct_invoice_reconciles_fully(engine, guard):
    got = _reconciliation(engine, guard["p"], guard["april"])
    assert len(got) == 75
    assert {v for v in got.values()} == {("matched", D("0.00"))}


def test_raw_keeps_every_version_and_redrop_is_a_noop(engine, reference, guard):
    with engine.connect() as conn:
        versions = (
            conn.execute(
                sa.text(
                    "select amount from raw.invoice_lines where invoice_id = :i and line_id = '0003' "
                    "order by line_version"
                ),
                {"i": guard["march"]},
            )
            .scalars()
            .all()
        )
    assert versions == [D("0.90"), D("0.60")]
    again = ingest_billing_file(engine, guard["folder"] / "billing" / f"{guard['march']}.csv", reference)
    assert again.skipped


def _adjustments(engine, invoice: str) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text("select * from actions.invoice_adjustments where invoice_id = :i order by adjustment_id"),
                {"i": invoice},
            ).mappings()
        ]


def test_adjustments_are_idempotent_and_superseded_when_fixed(engine, pg_info, reference, guard):
    from e2a_dagster.defs.invoicing.assets import invoice_adjustments
    from e2a_dagster.defs.resources import Database, Notifier

    p, march = guard["p"], guard["march"]
    result = dg.materialize([invoice_adjustments], resources={"database": Database(), "notifier": Notifier()})
    assert result.success
    first = _adjustments(engine, march)
    by_key = {(a["charge_code"], (a["order_id"] or "").removeprefix(p + "-")): a for a in first}
    summary = {k: (a["kind"], a["reason_code"], a["amount"], a["approval_status"]) for k, a in by_key.items()}
    assert summary == {
        ("PICK_UNIT", "A1"): ("correction", "RATE_MISMATCH", D("-0.15"), "auto_approved"),
        ("PICK_UNIT", "A2"): ("correction", "QUANTITY_MISMATCH", D("-0.35"), "auto_approved"),
        ("SHIPPING", "A2"): ("correction", "RATE_MISMATCH", D("-0.25"), "auto_approved"),
        ("ORDER_FEE", "A3"): ("correction", "DUPLICATE_CHARGE", D("-2.50"), "auto_approved"),
        ("ORDER_FEE", "A4"): ("correction", "UNEXPECTED_CHARGE", D("-2.50"), "auto_approved"),
        ("SHIPPING", "A7"): ("correction", "UNBILLED_CHARGE", D("6.60"), "auto_approved"),
        ("SLA_CREDIT", "A7"): ("sla_credit", "MISSING_SLA_CREDIT", D("-2.50"), "auto_approved"),
        ("MONTHLY_MINIMUM", ""): ("correction", "RATE_MISMATCH", D("-30.00"), "needs_review"),
    }
    assert all(a["currency"] == "USD" and a["status"] == "open" for a in first)
    dup = by_key[("ORDER_FEE", "A3")]["evidence"]
    assert dup["billed"]["line_ids"] == ["0011", "0012"]
    assert dup["expected"]["rate_card_id"] == "acme_standard" and dup["expected"]["rate_card_version"] == 1
    assert dup["source_event_ids"][0]["event_id"] == f"{p}-A3-carrier_pickup"
    label = by_key[("SHIPPING", "A2")]
    detail = label["evidence"]["expected"]["pricing_detail"]
    assert (D(str(detail["postage"])), D(str(detail["markup_pct"]))) == (D("5.00"), D(10))
    assert label["evidence"]["billed"]["quantity"] == label["evidence"]["expected"]["quantity"] == "1"
    assert "postage 5.00 + 10 % markup" in label["reason"], label["reason"]
    credit = by_key[("SLA_CREDIT", "A7")]["evidence"]
    assert credit["sla_policy"]["policy_version"] is not None and credit["sla_policy"]["credit_terms_version"] == 1

    # Second run over the same data: nothing changes, not even updated_at.
    again = sync_adjustments(engine, reference)
    assert again.inserted == 0 and again.updated == 0
    assert _adjustments(engine, march) == first

    # The billing system fixes A1's pick line: that discrepancy disappears and its adjustment is superseded.
    fix = write_invoice(
        guard["folder"] / "billing" / f"{march}-fix2.csv",
        march,
        MARCH,
        [("0002", "PICK_UNIT", f"{p}-A1", "3", "0.35", "1.05")],
    )
    assert ingest_billing_file(engine, fix, reference).superseding == 1
    dbt_build(
        pg_info,
        "stg_billing__invoice_lines int_billing_periods_classified int_monthly_minimums_charged "
        "int_sla_credits_capped fct_expected_charges fct_invoice_reconciliation",
    )
    sync_adjustments(engine, reference)
    after = {(a["charge_code"], (a["order_id"] or "").removeprefix(p + "-")): a for a in _adjustments(engine, march)}
    assert after[("PICK_UNIT", "A1")]["status"] == "superseded"
    assert after[("PICK_UNIT", "A1")]["superseded_at"] is not None
    assert {k for k, a in after.items() if a["status"] == "open"} == set(summary) - {("PICK_UNIT", "A1")}
