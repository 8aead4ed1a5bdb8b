"""Reconciliation per tenant and period across every invoice of the period, only closed (or invoiced) periods
judged, and the run guard on auto-approval (issue 16), on the real PostgreSQL with real dbt builds.

Months no other test uses; as_of = 2032-06-15 12:00 New York (May closed, June open) unless said otherwise.
acme (USD, NJ1 Mon–Fri 08:00–18:00, cutoff 14:00): ORDER_FEE 2.50, PICK_UNIT 0.35, PACK_CARTON 0.60, SHIPPING
postage + 10 %, MONTHLY_MINIMUM 250.00; late ship → credit 100 % of ORDER_FEE, capped at 10 % of the subtotal.

May 2032, every order paid 09:00 and handed over 16:00 the same day (ship met, no credit):
  S1 2 units, 1 carton, postage 5.00   ORDER_FEE 2.50, PICK_UNIT 0.70, PACK_CARTON 0.60, SHIPPING 5.50
  S2 1 unit,  1 carton, postage 4.00   2.50, 0.35, 0.60, 4.40
  S3 1 unit,  2 cartons, postage 6.00  2.50, 0.35, 1.20, 6.60
  S4 cancelled                         nothing
  fees excl. SHIPPING 3.80 + 3.45 + 4.05 = 11.30 → MONTHLY_MINIMUM 238.70; expected total 266.50
  INV-M1 (06-01) bills S1 fully, S2 without SHIPPING, S4's ORDER_FEE 2.50, the minimum 238.70: S2 SHIPPING and
     S3's four lines unbilled (+4.40, +2.50, +0.35, +1.20, +6.60), S4 unexpected (−2.50), all naming INV-M1
  INV-M1S (06-05, supplementary) bills S2 SHIPPING 4.40, S3's four lines, and S1's ORDER_FEE again: the
     unbilled rows resolve (their adjustments superseded, none new), S1 ORDER_FEE is a duplicate (−2.50, INV-M1S)
  CN-M1 (06-07, credit note) credits S4's ORDER_FEE 1 × −2.50: net 0.00 billed for nothing, matched
  billed 253.95 + 17.55 − 2.50 = 269.00, expected 266.50 (once), delta 2.50, open adjustments −2.50

June 2032 (open at as_of):
  J1 paid Tue 06-01 09:00, handed 16:00 (met), 1 unit, 1 carton, postage 5.00   2.50, 0.35, 0.60, 5.50
  J2 paid Wed 06-02 09:00, handed Thu 06-03 10:00 (late), same quantities       2.50, 0.35, 0.60, 5.50, −2.50
  open: no MONTHLY_MINIMUM, J2's credit uncapped −2.50 (10 % of the to-date 17.90 would cap it at 1.79)
  closed (as_of 07-01 00:00 New York): MONTHLY_MINIMUM 250.00 − 6.90 = 243.10, subtotal 261.00, cap 26.10
  an invoice for June dated 06-15 makes it `invoiced` at 06-15: judged with the minimum

globex April 2032 (EUR, Europe/Berlin; ORDER_FEE 2.10, PICK_UNIT 0.30, PACK_CARTON 0.55, minimum 200.00,
auto-approve ≤ 25.00, run guard 20 adjustments / 500.00 per run): G01..G21 one unit, one carton, no postage:
  21 × 2.95 = 61.95 → MONTHLY_MINIMUM 138.05. GINV bills only G01 and the minimum: 20 × 3 = 60 lines unbilled,
  Σ 20 × 2.95 = 59.00 EUR, each ≤ 25.00, but 60 > 20 auto-approvals in one run: all 60 → needs_review, one
  invoice_approval_guard notification.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core.dbt import run_dbt
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.invoicing.adjustments import adjustment_id, sync_adjustments
from e2a_dagster.lib.invoicing.billing import ingest_billing_file
from tests.invoice_helpers import event, shipped_order, write_events, write_invoice, write_warehouse_calendar

D = Decimal
AS_OF = "2032-06-15T12:00:00-04:00"
MAY = ("2032-05-01", "2032-05-31")
JUNE = ("2032-06-01", "2032-06-30")
APRIL = ("2032-04-01", "2032-04-30")
# fct_expected_charges and the intermediate models it assembles (periods, minimums, credits).
EXPECTED_CHARGES = (
    "int_billing_periods_classified int_monthly_minimums_charged int_sla_credits_capped fct_expected_charges"
)
INVOICE_MODELS = f"stg_billing__invoice_lines {EXPECTED_CHARGES} fct_invoice_reconciliation"


def build(pg_info, select: str, as_of: str = AS_OF) -> None:
    run_dbt(
        [
            "build",
            "--select",
            *select.split(),
            "--exclude",
            "resource_type:seed",
            "--vars",
            json.dumps({"as_of": as_of}),
        ],
        pg_info,
    )


def run(pg_info, select: str, as_of: str) -> None:
    run_dbt(["run", "--select", select, "--vars", json.dumps({"as_of": as_of}), "--quiet"], pg_info)


@pytest.fixture(scope="module")
def world(engine, pg_info, reference, dbt_seeded, tmp_path_factory):
    p = f"IP{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("invoice-periods")
    events = []
    for order, day, units, cartons, postage in [
        ("S1", "2032-05-03", 2, 1, "5.00"),
        ("S2", "2032-05-04", 1, 1, "4.00"),
        ("S3", "2032-05-05", 1, 2, "6.00"),
    ]:
        events += shipped_order(
            f"{p}-{order}",
            paid=f"{day}T09:00:00-04:00",
            handed=f"{day}T16:00:00-04:00",
            units=units,
            cartons=cartons,
            postage=postage,
        )
    events += [
        event(f"{p}-S4", "order_created", "oms", "2032-05-06T08:55:00-04:00", units=1),
        event(f"{p}-S4", "order_paid", "oms", "2032-05-06T09:00:00-04:00"),
        event(f"{p}-S4", "order_cancelled", "oms", "2032-05-06T10:00:00-04:00"),
    ]
    events += shipped_order(
        f"{p}-J1",
        paid="2032-06-01T09:00:00-04:00",
        handed="2032-06-01T16:00:00-04:00",
        units=1,
        cartons=1,
        postage="5.00",
    )
    events += shipped_order(
        f"{p}-J2",
        paid="2032-06-02T09:00:00-04:00",
        handed="2032-06-03T10:00:00-04:00",
        units=1,
        cartons=1,
        postage="5.00",
    )
    for n in range(1, 22):
        events += shipped_order(
            f"{p}-G{n:02d}",
            paid="2032-04-06T09:00:00+02:00",
            handed="2032-04-06T14:00:00+02:00",
            units=1,
            cartons=1,
            postage=None,
            tenant="globex",
            warehouse="BER1",
        )
    loaded = ingest_file(engine, write_events(folder / f"{p}.jsonl", events), reference)
    assert loaded.rejected == 0, loaded.reject_codes
    write_warehouse_calendar(engine)
    build(pg_info, "+fct_invoice_reconciliation")
    # Whatever other modules left unreconciled is written now, so each step below writes only its own rows.
    sync_adjustments(engine, reference)
    billing = folder / "billing"
    billing.mkdir()
    return {"p": p, "billing": billing}


def load(engine, reference, path) -> None:
    result = ingest_billing_file(engine, path, reference)
    assert result.rejected == 0 and result.loaded > 0, result


def recon(engine, p: str, tenant: str, period: str) -> dict[tuple[str, str | None], dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select * from marts.fct_invoice_reconciliation where tenant_id = :t and period_start = :m "
                "and (order_id like :p or order_id is null)"
            ),
            {"t": tenant, "m": period, "p": f"{p}-%"},
        ).mappings()
        return {(r["charge_code"], (r["order_id"] or "").removeprefix(f"{p}-") or None): dict(r) for r in rows}


def adjustments(engine, p: str, tenant: str = "acme") -> dict[tuple[str, str | None], dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select * from actions.invoice_adjustments where tenant_id = :t "
                "and (order_id like :p or (order_id is null and invoice_id like :i))"
            ),
            {"t": tenant, "p": f"{p}-%", "i": f"%{p}%"},
        ).mappings()
        return {(r["charge_code"], (r["order_id"] or "").removeprefix(f"{p}-") or None): dict(r) for r in rows}


def summary(rows: dict) -> dict:
    return {k: (r["discrepancy_type"], r["delta_amount"], r["invoice_id"]) for k, r in rows.items()}


# ------------------------------------------------------------------------------------------------------------------
# acme May: first invoice, supplementary invoice, credit note


INV_M1_LINES = [
    ("0001", "ORDER_FEE", "S1", "1", "2.50", "2.50"),
    ("0002", "PICK_UNIT", "S1", "2", "0.35", "0.70"),
    ("0003", "PACK_CARTON", "S1", "1", "0.60", "0.60"),
    ("0004", "SHIPPING", "S1", "1", "5.50", "5.50"),
    ("0005", "ORDER_FEE", "S2", "1", "2.50", "2.50"),
    ("0006", "PICK_UNIT", "S2", "1", "0.35", "0.35"),
    ("0007", "PACK_CARTON", "S2", "1", "0.60", "0.60"),
    ("0008", "ORDER_FEE", "S4", "1", "2.50", "2.50"),
    ("0009", "MONTHLY_MINIMUM", None, "1", "238.70", "238.70"),
]
INV_M1S_LINES = [
    ("0001", "SHIPPING", "S2", "1", "4.40", "4.40"),
    ("0002", "ORDER_FEE", "S3", "1", "2.50", "2.50"),
    ("0003", "PICK_UNIT", "S3", "1", "0.35", "0.35"),
    ("0004", "PACK_CARTON", "S3", "2", "0.60", "1.20"),
    ("0005", "SHIPPING", "S3", "1", "6.60", "6.60"),
    ("0006", "ORDER_FEE", "S1", "1", "2.50", "2.50"),  # billed again: a duplicate
]


def _lines(p: str, lines: list[tuple]) -> list[tuple]:
    return [(i, c, f"{p}-{o}" if o else None, q, r, a) for i, c, o, q, r, a in lines]


@pytest.fixture(scope="module")
def first_invoice(engine, pg_info, reference, world):
    p = world["p"]
    inv = f"INV-{p}-M1"
    load(
        engine,
        reference,
        write_invoice(world["billing"] / f"{inv}.csv", inv, MAY, _lines(p, INV_M1_LINES), invoice_date="2032-06-01"),
    )
    build(pg_info, INVOICE_MODELS)
    result = sync_adjustments(engine, reference)
    return {"inv": inv, "recon": recon(engine, p, "acme", "2032-05-01"), "adj": adjustments(engine, p), "sync": result}


def test_first_invoice_unbilled_and_unexpected_name_it(first_invoice):
    inv, zero = first_invoice["inv"], D("0.00")
    got = summary(first_invoice["recon"])
    assert got == {
        ("ORDER_FEE", "S1"): ("matched", zero, inv),
        ("PICK_UNIT", "S1"): ("matched", zero, inv),
        ("PACK_CARTON", "S1"): ("matched", zero, inv),
        ("SHIPPING", "S1"): ("matched", zero, inv),
        ("ORDER_FEE", "S2"): ("matched", zero, inv),
        ("PICK_UNIT", "S2"): ("matched", zero, inv),
        ("PACK_CARTON", "S2"): ("matched", zero, inv),
        ("SHIPPING", "S2"): ("unbilled", D("-4.40"), inv),
        ("ORDER_FEE", "S3"): ("unbilled", D("-2.50"), inv),
        ("PICK_UNIT", "S3"): ("unbilled", D("-0.35"), inv),
        ("PACK_CARTON", "S3"): ("unbilled", D("-1.20"), inv),
        ("SHIPPING", "S3"): ("unbilled", D("-6.60"), inv),
        ("ORDER_FEE", "S4"): ("unexpected_charge", D("2.50"), inv),
        ("MONTHLY_MINIMUM", None): ("matched", zero, inv),
    }
    adj = {
        k: (a["amount"], a["invoice_id"], a["approval_status"], a["status"]) for k, a in first_invoice["adj"].items()
    }
    assert adj == {
        ("SHIPPING", "S2"): (D("4.40"), inv, "auto_approved", "open"),
        ("ORDER_FEE", "S3"): (D("2.50"), inv, "auto_approved", "open"),
        ("PICK_UNIT", "S3"): (D("0.35"), inv, "auto_approved", "open"),
        ("PACK_CARTON", "S3"): (D("1.20"), inv, "auto_approved", "open"),
        ("SHIPPING", "S3"): (D("6.60"), inv, "auto_approved", "open"),
        ("ORDER_FEE", "S4"): (D("-2.50"), inv, "auto_approved", "open"),
    }
    assert all(a["period_start"] == date(2032, 5, 1) for a in first_invoice["adj"].values())
    assert first_invoice["sync"].guard_trips == []


@pytest.fixture(scope="module")
def supplementary(engine, pg_info, reference, world, first_invoice):
    p = world["p"]
    inv = f"INV-{p}-M1S"
    load(
        engine,
        reference,
        write_invoice(world["billing"] / f"{inv}.csv", inv, MAY, _lines(p, INV_M1S_LINES), invoice_date="2032-06-05"),
    )
    build(pg_info, INVOICE_MODELS)
    result = sync_adjustments(engine, reference)
    return {"inv": inv, "recon": recon(engine, p, "acme", "2032-05-01"), "adj": adjustments(engine, p), "sync": result}


def test_a_supplementary_invoice_resolves_the_unbilled_instead_of_creating_findings(first_invoice, supplementary):
    first, supp, zero = first_invoice["inv"], supplementary["inv"], D("0.00")
    got = summary(supplementary["recon"])
    assert len(got) == 14  # the month's 13 expected lines once each, and S4's unexpected charge
    assert got[("SHIPPING", "S2")] == ("matched", zero, supp)
    assert {got[(c, "S3")] for c in ("ORDER_FEE", "PICK_UNIT", "PACK_CARTON", "SHIPPING")} == {("matched", zero, supp)}
    assert got[("ORDER_FEE", "S1")] == ("duplicate_charge", D("2.50"), supp)
    assert got[("ORDER_FEE", "S4")] == ("unexpected_charge", D("2.50"), first)
    assert got[("PICK_UNIT", "S1")] == ("matched", zero, first)
    assert [k for k, v in got.items() if v[0] == "unbilled"] == []
    dup = supplementary["recon"][("ORDER_FEE", "S1")]
    assert dup["billed_invoice_ids"] == [first, supp]
    assert dup["billed_line_ids"] == ["0001", "0006"] and dup["net_line_count"] == 2
    assert dup["period_invoice_count"] == 2

    before, after = first_invoice["adj"], supplementary["adj"]
    # the same rows (same ids) are superseded, not replaced by new ones
    for key in [("SHIPPING", "S2")] + [(c, "S3") for c in ("ORDER_FEE", "PICK_UNIT", "PACK_CARTON", "SHIPPING")]:
        assert after[key]["adjustment_id"] == before[key]["adjustment_id"]
        assert after[key]["status"] == "superseded"
    opened = {k: (a["amount"], a["invoice_id"], a["reason_code"]) for k, a in after.items() if a["status"] == "open"}
    assert opened == {
        ("ORDER_FEE", "S1"): (D("-2.50"), supp, "DUPLICATE_CHARGE"),
        ("ORDER_FEE", "S4"): (D("-2.50"), first, "UNEXPECTED_CHARGE"),
    }
    assert after[("ORDER_FEE", "S1")]["evidence"]["billed"]["invoice_ids"] == [first, supp]
    assert supplementary["sync"].superseded >= 5


@pytest.fixture(scope="module")
def credit_note(engine, pg_info, reference, world, supplementary):
    p = world["p"]
    inv = f"CN-{p}-M1"
    lines = [("0001", "ORDER_FEE", f"{p}-S4", "1", "-2.50", "-2.50")]
    load(engine, reference, write_invoice(world["billing"] / f"{inv}.csv", inv, MAY, lines, invoice_date="2032-06-07"))
    build(pg_info, INVOICE_MODELS)
    sync_adjustments(engine, reference)
    run_dbt(["build", "--select", "agg_billing_monthly", "--vars", json.dumps({"as_of": AS_OF})], pg_info)
    with engine.connect() as conn:
        monthly = (
            conn.execute(
                sa.text(
                    "select * from marts.agg_billing_monthly where tenant_id = 'acme' and invoice_month = '2032-05-01'"
                )
            )
            .mappings()
            .one()
        )
    return {
        "inv": inv,
        "recon": recon(engine, p, "acme", "2032-05-01"),
        "adj": adjustments(engine, p),
        "monthly": dict(monthly),
    }


def test_a_credit_note_cancels_the_charge_it_reverses(supplementary, credit_note):
    s4 = credit_note["recon"][("ORDER_FEE", "S4")]
    assert (s4["discrepancy_type"], s4["billed_amount"], s4["billed_quantity"], s4["net_line_count"]) == (
        "matched",
        D("0.00"),
        D("0.0000"),
        0,
    )
    assert s4["invoice_id"] == credit_note["inv"] and s4["billed_line_count"] == 2
    assert credit_note["adj"][("ORDER_FEE", "S4")]["status"] == "superseded"
    opened = {k: a["amount"] for k, a in credit_note["adj"].items() if a["status"] == "open"}
    assert opened == {("ORDER_FEE", "S1"): D("-2.50")}


def test_billing_monthly_counts_the_expected_invoice_once(credit_note):
    m = credit_note["monthly"]
    assert (m["invoice_count"], m["billed_amount"], m["expected_amount"], m["delta_amount"]) == (
        3,
        D("269.00"),
        D("266.50"),
        D("2.50"),
    )
    assert (m["adjustments_amount"], m["adjusted_amount"], m["discrepancy_count"]) == (D("-2.50"), D("266.50"), 1)


# ------------------------------------------------------------------------------------------------------------------
# acme June: an open month is expected-to-date


def expected_june(engine, p: str) -> dict[tuple[str, str | None], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select charge_code, order_id, amount, period_status, pricing_detail from marts.fct_expected_charges "
                "where tenant_id = 'acme' and period_start = '2032-06-01'"
            )
        ).all()
    return {(c, (o or "").removeprefix(f"{p}-") or None): (a, s, d) for c, o, a, s, d in rows}


def test_an_open_month_has_no_minimum_no_cap_and_no_findings(engine, world, credit_note):
    p = world["p"]
    got = expected_june(engine, p)
    assert {k: v[0] for k, v in got.items()} == {
        ("ORDER_FEE", "J1"): D("2.50"),
        ("PICK_UNIT", "J1"): D("0.35"),
        ("PACK_CARTON", "J1"): D("0.60"),
        ("SHIPPING", "J1"): D("5.50"),
        ("ORDER_FEE", "J2"): D("2.50"),
        ("PICK_UNIT", "J2"): D("0.35"),
        ("PACK_CARTON", "J2"): D("0.60"),
        ("SHIPPING", "J2"): D("5.50"),
        ("SLA_CREDIT", "J2"): D("-2.50"),  # uncapped: 10 % of the 17.90 to date would be 1.79
    }
    assert {v[1] for v in got.values()} == {"open"}
    credit = got[("SLA_CREDIT", "J2")][2]
    assert credit["is_capped"] is False and credit["cap_amount"] is None
    with engine.connect() as conn:
        judged = conn.execute(
            sa.text(
                "select count(*) from marts.fct_invoice_reconciliation where tenant_id = 'acme' "
                "and period_start = '2032-06-01'"
            )
        ).scalar_one()
        adjusted = conn.execute(
            sa.text(
                "select count(*) from actions.invoice_adjustments where tenant_id = 'acme' "
                "and period_start = '2032-06-01'"
            )
        ).scalar_one()
    assert (judged, adjusted) == (0, 0)
    # May ended at as_of: closed
    with engine.connect() as conn:
        may = (
            conn.execute(
                sa.text(
                    "select distinct period_status from marts.fct_expected_charges where tenant_id = 'acme' "
                    "and period_start = '2032-05-01'"
                )
            )
            .scalars()
            .all()
        )
    assert may == ["closed"]


def test_the_month_closes_at_local_midnight(engine, pg_info, world, credit_note):
    p = world["p"]
    # 23:59:59 New York is already 07-01 in UTC: the month closes in the tenant's zone, not in UTC. (The tests
    # that follow rebuild the invoice models at as_of.)
    run(pg_info, EXPECTED_CHARGES, as_of="2032-06-30T23:59:59-04:00")
    before_midnight = expected_june(engine, p)
    run(pg_info, EXPECTED_CHARGES, as_of="2032-07-01T00:00:00-04:00")
    at_midnight = expected_june(engine, p)
    assert ("MONTHLY_MINIMUM", None) not in before_midnight
    assert {v[1] for v in before_midnight.values()} == {"open"}
    assert at_midnight[("MONTHLY_MINIMUM", None)][:2] == (D("243.10"), "closed")
    credit = at_midnight[("SLA_CREDIT", "J2")]
    assert credit[0] == D("-2.50") and D(str(credit[2]["cap_amount"])) == D("26.10")


def test_an_invoice_for_an_open_month_gets_it_judged(engine, pg_info, reference, world, credit_note):
    p = world["p"]
    inv = f"INV-{p}-J"
    lines = [
        ("0001", "ORDER_FEE", f"{p}-J1", "1", "2.50", "2.50"),
        ("0002", "PICK_UNIT", f"{p}-J1", "1", "0.35", "0.35"),
        ("0003", "PACK_CARTON", f"{p}-J1", "1", "0.60", "0.60"),
        ("0004", "SHIPPING", f"{p}-J1", "1", "5.50", "5.50"),
        ("0005", "ORDER_FEE", f"{p}-J2", "1", "2.50", "2.50"),
        ("0006", "PICK_UNIT", f"{p}-J2", "1", "0.35", "0.35"),
        ("0007", "PACK_CARTON", f"{p}-J2", "1", "0.60", "0.60"),
        ("0008", "SHIPPING", f"{p}-J2", "1", "5.50", "5.50"),
        ("0009", "SLA_CREDIT", f"{p}-J2", "1", "-2.50", "-2.50"),
        ("0010", "MONTHLY_MINIMUM", None, "1", "243.10", "243.10"),
    ]
    load(engine, reference, write_invoice(world["billing"] / f"{inv}.csv", inv, JUNE, lines, invoice_date="2032-06-15"))
    build(pg_info, INVOICE_MODELS)
    got = expected_june(engine, p)
    assert {v[1] for v in got.values()} == {"invoiced"}
    assert got[("MONTHLY_MINIMUM", None)][0] == D("243.10")
    rows = recon(engine, p, "acme", "2032-06-01")
    assert len(rows) == 10 and {r["discrepancy_type"] for r in rows.values()} == {"matched"}


# ------------------------------------------------------------------------------------------------------------------
# globex April: the run guard


@pytest.fixture(scope="module")
def guarded(engine, pg_info, reference, world, credit_note):
    p = world["p"]
    inv = f"GINV-{p}-A"
    lines = [
        ("0001", "ORDER_FEE", f"{p}-G01", "1", "2.10", "2.10"),
        ("0002", "PICK_UNIT", f"{p}-G01", "1", "0.30", "0.30"),
        ("0003", "PACK_CARTON", f"{p}-G01", "1", "0.55", "0.55"),
        ("0004", "MONTHLY_MINIMUM", None, "1", "138.05", "138.05"),
    ]
    path = write_invoice(
        world["billing"] / f"{inv}.csv", inv, APRIL, lines, tenant="globex", currency="EUR", invoice_date="2032-05-01"
    )
    load(engine, reference, path)
    build(pg_info, INVOICE_MODELS)
    first = sync_adjustments(engine, reference)
    rows = adjustments(engine, p, "globex")
    again = sync_adjustments(engine, reference)
    with engine.connect() as conn:
        notes = (
            conn.execute(
                sa.text(
                    "select * from actions.notifications where tenant_id = 'globex' and kind = 'invoice_approval_guard'"
                )
            )
            .mappings()
            .all()
        )
    return {"inv": inv, "first": first, "again": again, "adj": rows, "notes": [dict(n) for n in notes]}


def test_the_run_guard_sends_mass_auto_approvals_to_review(guarded):
    rows = guarded["adj"]
    assert len(rows) == 60
    assert {(a["discrepancy_type"], a["approval_status"], a["status"]) for a in rows.values()} == {
        ("unbilled", "needs_review", "open")
    }
    assert sum(a["amount"] for a in rows.values()) == D("59.00")
    assert all(a["approval_reason"].startswith("run_guard:") for a in rows.values())
    assert "60 adjustments" in next(iter(rows.values()))["approval_reason"]
    (trip,) = [t for t in guarded["first"].guard_trips if t.tenant_id == "globex"]
    assert (trip.count, trip.amount_abs, trip.max_per_run, trip.max_amount_per_run) == (60, D("59.00"), 20, D("500.00"))
    (note,) = guarded["notes"]
    assert note["status"] == "skipped"  # notifications are off in the tests: recorded, never sent
    assert "60 adjustments" in note["title"] and "59.00 EUR" in note["title"]
    assert note["subject_id"] == trip.subject_id


def test_held_adjustments_stay_held_and_are_not_notified_one_by_one(engine, guarded):
    from e2a_dagster.lib.actions import notify

    assert [t for t in guarded["again"].guard_trips if t.tenant_id == "globex"] == []
    assert guarded["again"].inserted == 0 and guarded["again"].updated == 0
    with engine.connect() as conn:
        statuses = (
            conn.execute(
                sa.text("select distinct approval_status from actions.invoice_adjustments where invoice_id = :i"),
                {"i": guarded["inv"]},
            )
            .scalars()
            .all()
        )
    assert statuses == ["needs_review"]
    notify.record_notifications(engine, enabled=False)
    ids = [a["adjustment_id"] for a in guarded["adj"].values()]
    with engine.connect() as conn:
        single = conn.execute(
            sa.text("select count(*) from actions.notifications where subject_id = any(:ids)"), {"ids": ids}
        ).scalar_one()
    assert single == 0


def test_adjustment_ids_follow_the_reconciliation_grain(guarded, world):
    p = world["p"]
    row = guarded["adj"][("ORDER_FEE", "G02")]
    assert row["adjustment_id"] == adjustment_id("globex", date(2032, 4, 1), "ORDER_FEE", f"{p}-G02", "unbilled")


def test_a_backtest_never_approves_and_says_what_live_would_do(engine, reference, world, guarded):
    from e2a_dagster.lib.core.backtest import drop_backtest, prepare_schemas

    p, name = world["p"], f"bt{world['p'].lower()}"

    def notifications() -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text("select count(*) from actions.notifications")).scalar_one()

    before = notifications()
    prepare_schemas(engine, name, datetime.fromisoformat(AS_OF))
    try:
        result = sync_adjustments(engine, reference, actions_schema=f"{name}_actions", backtest=True)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select order_id, approval_status, approval_reason "
                    f"from {name}_actions.invoice_adjustments where order_id like :p"
                ),
                {"p": f"{p}-%"},
            ).all()
    finally:
        drop_backtest(engine, name)
    by_order = {o.removeprefix(f"{p}-"): (s, r) for o, s, r in rows}
    # S1's duplicate (May) and G02..G21's 60 unbilled lines (April): written, none approved
    assert len(rows) == 61 and {s for s, _ in by_order.values()} == {"needs_review"}
    assert by_order["S1"][1].startswith("backtest: never approved; live would be ")
    # globex's 60 are more than one run may auto-approve: the live rules would hold them too
    assert by_order["G02"][1].startswith("backtest: never approved; live would be needs_review (run_guard:")
    assert any(t.tenant_id == "globex" and t.count == 60 for t in result.guard_trips)
    assert notifications() == before  # a backtest notifies nobody
