"""The approval rules of invoice adjustments and the run guard (lib/invoicing/adjustments.py), as pure functions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from e2a_dagster.lib.invoicing.adjustments import (
    Adjustment,
    ApprovalPolicy,
    Stored,
    apply_run_guard,
    approval_for,
    is_new_approval,
)

D = Decimal
ACME = ApprovalPolicy(auto_approve_limit=D("25.00"))


def adj(n: int, amount: str, tenant: str = "acme", status: str = "auto_approved") -> Adjustment:
    return Adjustment(
        adjustment_id=f"{tenant}-{n:03d}",
        tenant_id=tenant,
        invoice_id="INV-1",
        period_start=date(2026, 3, 1),
        charge_code="ORDER_FEE",
        order_id=f"O{n}",
        discrepancy_type="unbilled",
        kind="correction",
        reason_code="UNBILLED_CHARGE",
        reason="r",
        amount=D(amount),
        currency="USD",
        approval_status=status,
        approval_reason="limit",
        evidence={},
    )


def test_policy_defaults_and_overrides_from_the_tenant_row():
    assert ApprovalPolicy.from_tenant("acme", {"auto_approve_limit": "25.00"}) == ApprovalPolicy(
        D("25.00"), 20, D("500")
    )
    row = {"auto_approve_limit": "", "auto_approve_max_per_run": "5", "auto_approve_max_amount_per_run": "80.00"}
    assert ApprovalPolicy.from_tenant("x", row) == ApprovalPolicy(None, 5, D("80.00"))
    with pytest.raises(ValueError, match="auto_approve_max_per_run of tenant 'x' is not a whole number"):
        ApprovalPolicy.from_tenant("x", {"auto_approve_max_per_run": "2.5"})
    with pytest.raises(ValueError, match="is not a number"):
        ApprovalPolicy.from_tenant("x", {"auto_approve_max_amount_per_run": "lots"})
    with pytest.raises(ValueError, match="is negative"):
        ApprovalPolicy.from_tenant("x", {"auto_approve_limit": "-1"})


def test_approval_by_the_tenant_limit_and_what_survives_a_rerun():
    assert approval_for(D("-25.00"), ACME, None)[0] == "auto_approved"  # |amount| = limit: auto
    assert approval_for(D("25.01"), ACME, None)[0] == "needs_review"
    assert approval_for(D("1.00"), ApprovalPolicy(), None)[0] == "needs_review"  # no limit: a person decides
    person = Stored(D("3.00"), "rejected", "finance: the client paid it", "open")
    assert approval_for(D("3.00"), ACME, person) == ("rejected", "finance: the client paid it")
    assert approval_for(D("4.00"), ACME, person)[0] == "auto_approved"  # the amount changed: decided anew
    held = Stored(D("3.00"), "needs_review", "run_guard: 30 adjustments", "open")
    assert approval_for(D("3.00"), ACME, held) == ("needs_review", "run_guard: 30 adjustments")


def test_what_counts_as_a_new_auto_approval():
    assert is_new_approval("auto_approved", D("2.50"), None)
    assert not is_new_approval("needs_review", D("2.50"), None)
    assert not is_new_approval("auto_approved", D("2.50"), Stored(D("2.50"), "auto_approved", "x", "open"))
    assert is_new_approval("auto_approved", D("2.60"), Stored(D("2.50"), "auto_approved", "x", "open"))
    assert is_new_approval("auto_approved", D("2.50"), Stored(D("2.50"), "auto_approved", "x", "superseded"))


def test_the_guard_allows_twenty_and_holds_twenty_one():
    policies = {"acme": ACME}
    twenty = [adj(n, "1.00") for n in range(20)]
    out, trips = apply_run_guard(twenty, {}, policies)
    assert trips == [] and {a.approval_status for a in out} == {"auto_approved"}

    out, trips = apply_run_guard([*twenty, adj(20, "1.00"), adj(99, "30.00", status="needs_review")], {}, policies)
    (trip,) = trips
    assert (trip.tenant_id, trip.count, trip.amount_abs, trip.amount_net) == ("acme", 21, D("21.00"), D("21.00"))
    assert {a.approval_status for a in out} == {"needs_review"}
    assert all(a.approval_reason == trip.reason for a in out if a.adjustment_id != "acme-099")
    assert next(a for a in out if a.adjustment_id == "acme-099").approval_reason == "limit"  # not an auto-approval


def test_the_guard_counts_money_in_both_directions_and_per_tenant():
    policies = {"acme": ApprovalPolicy(D("300.00")), "globex": ApprovalPolicy(D("300.00"))}
    batch = [adj(1, "260.00"), adj(2, "-240.01"), adj(3, "260.00", tenant="globex"), adj(4, "-240.00", tenant="globex")]
    out, trips = apply_run_guard(batch, {}, policies)
    (trip,) = trips  # acme: Σ|amount| 500.01 > 500.00; globex: exactly 500.00 is allowed
    assert (trip.tenant_id, trip.amount_abs, trip.amount_net) == ("acme", D("500.01"), D("19.99"))
    assert [a.approval_status for a in out] == ["needs_review", "needs_review", "auto_approved", "auto_approved"]


def test_already_approved_rows_do_not_count_again():
    stored = {f"acme-{n:03d}": Stored(D("1.00"), "auto_approved", "x", "open") for n in range(20)}
    batch = [adj(n, "1.00") for n in range(25)]  # 20 approved by an earlier run, 5 new
    out, trips = apply_run_guard(batch, stored, {"acme": ACME})
    assert trips == [] and {a.approval_status for a in out} == {"auto_approved"}


def test_a_tenant_with_a_zero_guard_never_auto_approves():
    out, trips = apply_run_guard([adj(1, "0.50")], {}, {"acme": ApprovalPolicy(D("25.00"), 0, D("500"))})
    assert [a.approval_status for a in out] == ["needs_review"] and trips[0].count == 1


def test_the_lint_checks_the_approval_settings(tmp_path):
    import shutil

    from e2a_dagster.lib.core.settings import SEEDS_DIR
    from e2a_dagster.lib.quality.lint import lint_seeds

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    path = seeds / "tenants.csv"
    lines = path.read_text().splitlines()
    assert lines[1].endswith(",25.00,true,20,500.00") and lines[2].endswith(",25.00,true,20,500.00")
    lines[1] = lines[1].removesuffix(",20,500.00") + ",2.5,500.00"  # acme: not a whole number
    lines[2] = lines[2].removesuffix(",20,500.00") + ",20,-1"  # globex: negative
    path.write_text("\n".join(lines) + "\n")
    got = {(f.file.split("/")[-1], f.line, f.code) for f in lint_seeds(seeds) if f.file.endswith("tenants.csv")}
    assert got == {("tenants.csv", 2, "invalid_number"), ("tenants.csv", 3, "negative_limit")}
