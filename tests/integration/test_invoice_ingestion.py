"""Billing ingestion against the real PostgreSQL: every bad line gets its own error code, nothing is lost."""

from __future__ import annotations

import sqlalchemy as sa

from e2a_dagster.lib.invoicing.billing import FIELDS, ingest_billing_file


def _write(path, rows: list[list[str]], header: tuple[str, ...] = FIELDS):
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_bad_lines_go_to_the_dlq_with_specific_codes(engine, reference, tmp_path, uid):
    inv = f"INV-R{uid}"
    base = [inv, "acme", "2031-02-01", "2031-01-01", "2031-01-31"]
    rows = [
        [*base, "1", "ORDER_FEE", "o1", "1", "2.50", "2.50", "USD"],  # good
        [*base, "2", "ORDER_FEE", "o2", "1", "2.50", "two fifty", "USD"],  # non_numeric_amount
        [
            inv,
            "nobody",
            "2031-02-01",
            "2031-01-01",
            "2031-01-31",
            "3",
            "ORDER_FEE",
            "o3",
            "1",
            "2.50",
            "2.50",
            "USD",
        ],  # unknown_tenant
        [*base, "4", "GIFT_WRAP", "o4", "1", "2.50", "2.50", "USD"],  # unknown_charge_code
        [*base, "5", "PICK_UNIT", "o5", "3", "0.35", "1.50", "USD"],  # amount_mismatch
        [*base, "6", "PICK_UNIT", "o6", "-1", "0.35", "-0.35", "USD"],  # negative_quantity
        [*base, "7", "ORDER_FEE", "o7", "1", "2.50", "2.50", "EUR"],  # currency_mismatch
        [
            inv + "b",
            "acme",
            "2031-02-01",
            "2031-01-31",
            "2031-01-01",
            "8",
            "ORDER_FEE",
            "o8",
            "1",
            "2.50",
            "2.50",
            "USD",
        ],  # period_end_before_start
        [
            inv + "c",
            "acme",
            "2031-02-01T09:00:00",
            "2031-01-01",
            "2031-01-31",
            "9",
            "ORDER_FEE",
            "o9",
            "1",
            "2.50",
            "2.50",
            "USD",
        ],  # naive_timestamp
        [
            inv + "d",
            "acme",
            "2031-02-30",
            "2031-01-01",
            "2031-01-31",
            "10",
            "ORDER_FEE",
            "o10",
            "1",
            "2.50",
            "2.50",
            "USD",
        ],  # invalid_date
        [*base, "11", "ORDER_FEE", "", "1", "2.50", "2.50", "USD"],  # missing_order_id
        [*base, "12", "ORDER_FEE", "o12", "1", "2.50", "2.505", "USD"],  # invalid_amount (3 places)
        [*base, "1", "ORDER_FEE", "o1", "1", "2.60", "2.60", "USD"],  # duplicate_line_id
        [*base, "13", "ORDER_FEE", "o13", "1"],  # malformed_csv
    ]
    path = _write(tmp_path / f"{uid}.csv", rows)
    result = ingest_billing_file(engine, path, reference)
    assert (result.records, result.loaded, result.rejected) == (14, 1, 13)
    with engine.connect() as conn:
        rejected = conn.execute(
            sa.text(
                "select location, error_code, raw from ops.rejected_records where source = 'billing' "
                "and location like :f order by rejected_id"
            ),
            {"f": f"{path.name}:%"},
        ).all()
    assert [r.error_code for r in rejected] == [
        "non_numeric_amount",
        "unknown_tenant",
        "unknown_charge_code",
        "amount_mismatch",
        "negative_quantity",
        "currency_mismatch",
        "period_end_before_start",
        "naive_timestamp",
        "invalid_date",
        "missing_order_id",
        "invalid_amount",
        "duplicate_line_id",
        "malformed_csv",
    ]
    assert rejected[0].location == f"{path.name}:3" and "two fifty" in rejected[0].raw
    assert ingest_billing_file(engine, path, reference).skipped  # the ledger: a re-dropped file is a no-op


def test_identical_line_in_another_file_is_a_noop_and_a_changed_line_a_new_version(engine, reference, tmp_path, uid):
    inv = f"INV-V{uid}"
    row = [
        inv,
        "acme",
        "2031-02-01",
        "2031-01-01",
        "2031-01-31",
        "1",
        "ORDER_FEE",
        "o1",
        "1",
        "2.50",
        "2.50",
        "USD",
    ]
    first = ingest_billing_file(engine, _write(tmp_path / "a.csv", [row]), reference)
    # Same line, written differently ("2.5" vs "2.50"): the same content, so nothing new.
    same = ingest_billing_file(engine, _write(tmp_path / "b.csv", [[*row[:9], "2.5", "2.5", "USD"], row]), reference)
    changed = ingest_billing_file(engine, _write(tmp_path / "c.csv", [[*row[:9], "2.25", "2.25", "USD"]]), reference)
    assert (first.loaded, same.loaded, same.duplicates, changed.loaded, changed.superseding) == (
        1,
        0,
        1,
        1,
        1,
    )
    with engine.connect() as conn:
        amounts = (
            conn.execute(
                sa.text("select amount from raw.invoice_lines where invoice_id = :i order by line_version"),
                {"i": inv},
            )
            .scalars()
            .all()
        )
    assert [str(a) for a in amounts] == ["2.50", "2.25"]


def test_dlq_replay_loads_billing_lines_after_a_seed_fix(engine, reference, tmp_path, uid):
    """Rejected invoice lines replay through the billing path (not the events one), with the file's own
    column order, and only what now passes loads."""
    import shutil

    from e2a_dagster.lib.core.reference import Reference
    from e2a_dagster.lib.core.settings import SEEDS_DIR
    from e2a_dagster.lib.ingestion.dlq import replay

    tenant = f"b{uid}"
    inv = f"INV-D{uid}"
    header = tuple(reversed(FIELDS))  # a file with its columns in another order than DESIGN §4.3
    rows = [
        [inv, tenant, "2031-02-01", "2031-01-01", "2031-01-31", "1", "ORDER_FEE", "o1", "1", "2.50", "2.50", "USD"],
        [inv, tenant, "2031-02-01", "2031-01-01", "2031-01-31", "2", "PICK_UNIT", "o1", "3", "0.35", "1.05", "USD"],
        [inv, tenant, "2031-02-01", "2031-01-01", "2031-01-31", "3", "ORDER_FEE", "o2", "1", "2.50", "lots", "USD"],
    ]
    billing_dir = tmp_path / "billing"
    billing_dir.mkdir()
    path = _write(billing_dir / f"{inv}.csv", [list(reversed(r)) for r in rows], header)
    first = ingest_billing_file(engine, path, reference)
    assert (first.loaded, first.rejected) == (0, 3)
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                sa.text("select location, rejected_id from ops.rejected_records where location like :f"),
                {"f": f"{path.name}:%"},
            ).all()
        )
    assert sorted(ids) == [f"{path.name}:2", f"{path.name}:3", f"{path.name}:4"]

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    with (seeds / "tenants.csv").open("a") as fh:
        fh.write(f"{tenant},Fixed Tenant,USD,America/New_York,NJ1,0.01,0,25.00,true\n")
    result = replay(engine, Reference.load(seeds), ids=list(ids.values()), billing_dir=billing_dir)
    assert (sorted(result.replayed), result.still_failing, result.loaded_rows) == (
        sorted([ids[f"{path.name}:2"], ids[f"{path.name}:3"]]),
        [ids[f"{path.name}:4"]],
        2,
    )
    with engine.connect() as conn:
        loaded = conn.execute(
            sa.text(
                "select line_id, charge_code, quantity, amount, file_name, line_number from raw.invoice_lines "
                "where invoice_id = :i order by line_id"
            ),
            {"i": inv},
        ).all()
        still = conn.execute(
            sa.text("select status, error_code from ops.rejected_records where rejected_id = :r"),
            {"r": ids[f"{path.name}:4"]},
        ).one()
    assert [(a, b, str(c), str(d), e, f) for a, b, c, d, e, f in loaded] == [
        ("1", "ORDER_FEE", "1.0000", "2.50", path.name, 2),
        ("2", "PICK_UNIT", "3.0000", "1.05", path.name, 3),
    ]
    assert tuple(still) == ("open", "non_numeric_amount")
    # Replaying again loads nothing twice.
    again = replay(engine, Reference.load(seeds), ids=list(ids.values()), billing_dir=billing_dir)
    assert again.loaded_rows == 0 and again.replayed == []
    with engine.begin() as conn:  # the tenant exists only in this test's seed copy: leave the shared marts valid
        conn.execute(sa.text("delete from raw.invoice_lines where tenant_id = :t"), {"t": tenant})
