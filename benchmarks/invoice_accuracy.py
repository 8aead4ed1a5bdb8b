"""Invoice guard accuracy against the simulator's injected billing errors (issues 5, 16).

Simulates a history (default 30 days, 10,000 orders) with the billing system's invoices and their injected
errors (ground truth: ``kind = billing_error`` records), runs the real pipeline (ingestion, dbt build with
``as_of`` = the end of the history, adjustments) in a dedicated database, and prints JSON: per discrepancy
type, precision and recall of ``marts.fct_invoice_reconciliation`` against the injected errors at the
reconciliation grain (tenant, period, charge code, order), whether each flagged error names the invoice DESIGN §6
gives it, and a baseline run in the same process: an invoice-only check (what a billing clerk finds from the
invoice and the rate card alone: repeated (charge, order) lines and unit rates that differ from the rate card).

By default every month is billed in two invoices (the simulator's ``supplementary_invoices``: a main invoice
that leaves some correct lines out, and a supplementary one that bills them, carries the second line of one
duplicate and a reversed-and-rebilled line); ``--single-invoice`` sends one invoice per month.

    python benchmarks/invoice_accuracy.py [--orders 10000] [--days 30] [--seed 11] \
        [--end 2026-04-10T00:00:00Z] [--single-invoice]

``--simulator-ref REF`` loads the simulator modules from a git ref (e.g. ``issue-4-sources``) when this branch
does not carry the billing simulator yet; after the merge it is not needed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from e2a_dagster.lib.core.vocabulary import FINDINGS as TYPES  # noqa: E402 (the project's own modules, after the path)

BENCH_DB = "e2a_bench_invoice"


def _overlay_simulator(ref: str) -> None:
    """Load ``e2a_dagster.lib.simulator.simulator`` (and its helpers) from ``ref`` without touching the worktree."""
    import e2a_dagster.lib as lib

    overlay = Path(tempfile.mkdtemp(prefix="e2a-sim-"))
    for name in ("simulator", "sim_sla", "sim_billing", "mock_shopify"):
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:e2a_dagster/lib/{name}.py"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            (overlay / f"{name}.py").write_text(proc.stdout)
    lib.__path__.insert(0, str(overlay))
    sys.modules.pop("e2a_dagster.lib.simulator.simulator", None)


def _database(fresh: bool = True):
    import psycopg

    from e2a_dagster.lib.core.database import resolve_connection
    from e2a_dagster.lib.core.settings import load_settings

    info = resolve_connection(load_settings())
    target = info.with_dbname(BENCH_DB)
    if fresh:
        with psycopg.connect(info.with_dbname("postgres").url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{BENCH_DB}" with (force)')
            conn.execute(f'create database "{BENCH_DB}"')
    return target


def _score(predicted: set[tuple], truth: set[tuple]) -> dict:
    out = {}
    for kind in TYPES:
        p = {x for x in predicted if x[-1] == kind}
        t = {x for x in truth if x[-1] == kind}
        tp = len(p & t)
        out[kind] = {
            "injected": len(t),
            "flagged": len(p),
            "true_positives": tp,
            "precision": round(tp / len(p), 4) if p else None,  # nothing flagged: no precision figure
            "recall": round(tp / len(t), 4) if t else None,
        }
    p_all, t_all = len(predicted), len(truth)
    tp_all = len(predicted & truth)
    out["all"] = {
        "injected": t_all,
        "flagged": p_all,
        "true_positives": tp_all,
        "precision": round(tp_all / p_all, 4) if p_all else None,
        "recall": round(tp_all / t_all, 4) if t_all else None,
    }
    return out


BASELINE_SQL = """
-- Invoice-only check, one invoice at a time: repeated (charge, order) lines are duplicates; a unit rate that is
-- not a rate of the rate card version effective on the period start (a credit line's as its absolute value) is a
-- rate mismatch. A SHIPPING label's unit rate is its amount (postage × (1 + markup)): without the postage it
-- cannot be checked. Nothing else is visible without activity. Reported at the reconciliation grain.
with lines as (
    select * from staging.stg_billing__invoice_lines where is_current and invoice_id = any(:invoices)
),
dups as (
    select tenant_id, period_start, charge_code, order_id, 'duplicate_charge' as kind
    from lines where order_id is not null group by invoice_id, 1, 2, 3, 4 having count(*) > 1
),
rates as (
    select lines.tenant_id, lines.period_start, lines.charge_code, lines.order_id, 'rate_mismatch' as kind
    from lines
    where lines.charge_code in ('ORDER_FEE', 'PICK_UNIT', 'PACK_CARTON', 'RETURN_FEE')
      and not exists (
        select 1 from reference.rate_cards c
        where c.tenant_id = lines.tenant_id and c.charge_code = lines.charge_code
          and lines.period_start >= c.effective_from and lines.period_start < c.effective_to
          and round(c.rate * (1 + coalesce(c.markup_pct, 0) / 100), 6) = abs(lines.unit_rate))
),
found as (select * from dups union select * from rates)
select tenant_id, to_char(date_trunc('month', period_start), 'YYYY-MM-DD'), charge_code, order_id, kind from found
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--anomalies", type=float, default=0.02)
    parser.add_argument(
        "--end",
        default="2026-04-10T00:00:00+00:00",
        help="end of the history (the as_of of the build); invoices cover the complete months",
    )
    parser.add_argument("--simulator-ref", default=None)
    parser.add_argument("--single-invoice", action="store_true", help="one invoice per month (no supplementary)")
    args = parser.parse_args(argv)

    if args.simulator_ref:
        _overlay_simulator(args.simulator_ref)
    import inspect

    simulator = importlib.import_module("e2a_dagster.lib.simulator.simulator")
    if "billing_dir" not in inspect.signature(simulator.simulate_history).parameters:
        print(
            json.dumps(
                {
                    "benchmark": "invoice_accuracy",
                    "status": "skipped",
                    "reason": "this branch's simulator writes no invoices; pass --simulator-ref "
                    "issue-4-sources (or merge it)",
                }
            )
        )
        return 2

    import sqlalchemy as sa

    from e2a_dagster.lib.core.database import make_engine
    from e2a_dagster.lib.core.dbt import run_dbt
    from e2a_dagster.lib.core.reference import Reference
    from e2a_dagster.lib.core.schema import migrate
    from e2a_dagster.lib.core.settings import SEEDS_DIR
    from e2a_dagster.lib.ingestion.ingest import ingest_file, pending_files
    from e2a_dagster.lib.invoicing.adjustments import sync_adjustments
    from e2a_dagster.lib.invoicing.billing import ingest_billing_file, pending_billing_files
    from e2a_dagster.lib.sla.calendar import calendar_from_seeds, calendar_window, data_range, write_calendar

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    end = datetime.fromisoformat(args.end.replace("Z", "+00:00")).astimezone(UTC)
    work = Path(tempfile.mkdtemp(prefix="e2a-invoice-bench-"))
    events_dir, billing_dir, truth_dir = work / "events", work / "billing", work / "truth"
    events_dir.mkdir()
    reference = Reference.load()
    extra = {}
    if "supplementary_invoices" in inspect.signature(simulator.simulate_history).parameters:
        extra["supplementary_invoices"] = not args.single_invoice
    summary = simulator.simulate_history(
        reference,
        events_dir,
        orders=args.orders,
        days=args.days,
        seed=args.seed,
        end=end,
        anomalies=args.anomalies,
        billing_dir=billing_dir,
        ground_truth_dir=truth_dir,
        **extra,
    )
    lap("simulate_s")
    truth_records = [json.loads(line) for line in Path(summary["ground_truth"]).read_text().splitlines()]
    errors = [r for r in truth_records if r.get("kind") == "billing_error"]
    invoices = [r["invoice_id"] for r in truth_records if r.get("kind") == "invoice"]
    invoice_periods = {(r["tenant_id"], r["period_start"]) for r in truth_records if r.get("kind") == "invoice"}
    # The reconciliation grain (DESIGN §6): (tenant, period, charge code, order) and the discrepancy type.
    truth = {
        (r["tenant_id"], r["period_start"], r["charge_code"], r["order_id"], r["discrepancy_type"]) for r in errors
    }
    truth_invoice = {
        (r["tenant_id"], r["period_start"], r["charge_code"], r["order_id"], r["discrepancy_type"]): r["invoice_id"]
        for r in errors
    }

    info = _database()
    engine = make_engine(info)
    migrate(engine)
    run_dbt(["seed", "--quiet"], info)
    for path in pending_files(events_dir):
        ingest_file(engine, path, reference)
    first, last = calendar_window(end.date(), *data_range(engine))
    write_calendar(engine, calendar_from_seeds(SEEDS_DIR, first, last))
    billing = [ingest_billing_file(engine, p, reference) for p in pending_billing_files(billing_dir)]
    lap("ingest_s")
    run_dbt(
        [
            "build",
            "--select",
            "+fct_invoice_reconciliation",
            "--exclude",
            "resource_type:seed",
            "--vars",
            json.dumps({"as_of": end.isoformat()}),
        ],
        info,
    )
    lap("dbt_build_s")
    sync = sync_adjustments(engine, reference)
    lap("adjustments_s")
    run_dbt(["build", "--select", "agg_billing_monthly", "--vars", json.dumps({"as_of": end.isoformat()})], info)

    with engine.connect() as conn:
        flagged_rows = conn.execute(
            sa.text(
                "select tenant_id, to_char(period_start, 'YYYY-MM-DD'), charge_code, order_id, discrepancy_type, "
                "invoice_id from marts.fct_invoice_reconciliation where discrepancy_type <> 'matched'"
            )
        ).all()
        flagged = [r[:5] for r in flagged_rows if (r[0], r[1]) in invoice_periods]
        named = {tuple(r[:5]): r[5] for r in flagged_rows}
        baseline = conn.execute(sa.text(BASELINE_SQL), {"invoices": invoices}).all()
        money = conn.execute(
            sa.text(
                "select currency, sum(billed_amount), sum(expected_amount), sum(delta_amount) "
                "from marts.fct_invoice_reconciliation where invoice_id = any(:i) group by currency"
            ),
            {"i": invoices},
        ).all()
        monthly = conn.execute(
            sa.text(
                "select tenant_id, invoice_month, invoice_count, billed_amount, expected_amount "
                "from marts.agg_billing_monthly order by 1, 2"
            )
        ).all()
        adjustments_total = conn.execute(
            sa.text(
                "select currency, count(*), sum(amount) from actions.invoice_adjustments "
                "where status = 'open' "
                "group by currency"
            )
        ).all()
    predicted = {tuple(r) for r in flagged}
    misses = sorted(truth - predicted)[:10]
    false_alarms = sorted(predicted - truth)[:10]
    found = predicted & truth
    wrong_invoice = sorted((k, named[k], truth_invoice[k]) for k in found if named[k] != truth_invoice[k])
    result = {
        "benchmark": "invoice_accuracy",
        "params": {
            "orders": args.orders,
            "days": args.days,
            "seed": args.seed,
            "anomalies": args.anomalies,
            "end": end.isoformat(),
            "simulator_ref": args.simulator_ref,
        },
        "simulated": {
            "invoices": len(invoices),
            "injected_errors": len(errors),
            "by_type": dict(Counter(r["discrepancy_type"] for r in errors)),
        },
        "billing_lines_loaded": sum(b.loaded for b in billing),
        "billing_lines_rejected": sum(b.rejected for b in billing),
        "invoice_guard": _score(predicted, truth),
        "invoice_named": {"agree": len(found) - len(wrong_invoice), "differ": len(wrong_invoice)},
        "baseline_invoice_only": _score({tuple(r) for r in baseline}, truth),
        "missed": [list(m) for m in misses],
        "false_alarms": [list(f) for f in false_alarms],
        "money": {c: {"billed": str(b), "expected": str(e), "delta": str(d)} for c, b, e, d in money},
        "adjustments_open": {c: {"count": n, "amount": str(a)} for c, n, a in adjustments_total},
        "adjustments_sync": sync.as_metadata(),
        "billing_monthly": [
            {"tenant": t, "month": str(m), "invoices": n, "billed": str(b), "expected": str(e)}
            for t, m, n, b, e in monthly
        ],
        "wrong_invoice_named": [[list(k), got, want] for k, got, want in wrong_invoice[:10]],
        "timings": timings,
    }
    print(json.dumps(result, indent=2, default=str))
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
