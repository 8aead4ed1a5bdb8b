"""Crash safety and the dead-letter queue, against the real PostgreSQL.

A subprocess is SIGKILLed in the middle of an ingestion transaction (landing file, Shopify pull); after
recovery the counts are exact: nothing lost, nothing twice. The DLQ replays what a seed fix makes valid, counts
attempts, marks records that keep failing, and discards on request."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from e2a_dagster.lib.dlq import discard, replay
from e2a_dagster.lib.ingest import ingest_file
from e2a_dagster.lib.mock_shopify import OrderStore, ServerThread, create_app
from e2a_dagster.lib.reference import Reference
from e2a_dagster.lib.settings import PROJECT_ROOT, SEEDS_DIR
from e2a_dagster.lib.shopify import ShopifyClient, ShopifyConfig, pull_orders, read_cursor
from tests.helpers import order_timeline, write_jsonl

T0 = datetime(2026, 4, 6, 13, 0, tzinfo=UTC)


def _run_killed(script: str, pg_info) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "E2A_DATABASE_URL": pg_info.url(), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_sigkill_mid_file_then_recovery_loads_each_event_exactly_once(engine, reference, pg_info, events_dir, uid):
    events = [
        e | {"event_id": f"{e['event_id']}-{i}", "order_id": f"K{uid}-{i}"}
        for i in range(15)
        for e in order_timeline(f"K{uid}")[:2]
    ]
    path = write_jsonl(events_dir / f"kill-{uid}.jsonl", events)
    proc = _run_killed(
        f"""
        import os, signal
        from pathlib import Path
        from e2a_dagster.lib.database import ConnectionInfo, make_engine
        from e2a_dagster.lib.ingest import ingest_file
        from e2a_dagster.lib.reference import Reference
        engine = make_engine(ConnectionInfo.from_url(os.environ["E2A_DATABASE_URL"]))
        def die(progress):  # called inside the file's transaction, after the first batch went in
            os.kill(os.getpid(), signal.SIGKILL)
        ingest_file(engine, Path({str(path)!r}), Reference.load(), batch_size=10, progress=die)
    """,
        pg_info,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _count(engine, "select count(*) from raw.order_events where order_id like :p", p=f"K{uid}-%") == 0
    assert _count(engine, "select count(*) from ops.ingested_files where file_name = :f", f=path.name) == 0

    result = ingest_file(engine, path, reference, batch_size=10)
    assert (result.records, result.loaded, result.duplicates, result.rejected) == (30, 30, 0, 0)
    assert _count(engine, "select count(*) from raw.order_events where order_id like :p", p=f"K{uid}-%") == 30
    assert ingest_file(engine, path, reference).skipped


def test_sigkill_mid_shopify_pull_resumes_at_the_committed_page(engine, pg_info, uid):
    base = 9_300_000_000 + int(uid[:6], 16)
    store = OrderStore()
    store.add(
        [
            {
                "id": base + i,
                "created_at": T0.isoformat(),
                "updated_at": (T0 + timedelta(minutes=i)).isoformat(),
            }
            for i in range(9)
        ]
    )
    with ServerThread(create_app(store, "tok")) as server:
        proc = _run_killed(
            f"""
            import os, signal
            from e2a_dagster.lib import shopify
            from e2a_dagster.lib.database import ConnectionInfo, make_engine
            engine = make_engine(ConnectionInfo.from_url(os.environ["E2A_DATABASE_URL"]))
            insert = shopify.insert_orders
            pages = []
            def insert_then_die_on_page_3(cur, rows):
                pages.append(len(rows))
                n = insert(cur, rows)
                if len(pages) == 3:  # rows of page 3 written, its transaction not committed
                    os.kill(os.getpid(), signal.SIGKILL)
                return n
            shopify.insert_orders = insert_then_die_on_page_3
            config = shopify.ShopifyConfig(shop_url={server.url!r}, token="tok", tenant_id="acme", page_size=2)
            shopify.pull_orders(engine, shopify.ShopifyClient(config), tenants={{"acme"}})
        """,
            pg_info,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        count = "select count(*) from raw.shopify_orders where shop = :s"
        assert _count(engine, count, s=server.url) == 4  # pages 1 and 2
        cursor = read_cursor(engine, server.url)
        assert cursor.next_page is not None and cursor.high_water_mark is None

        config = ShopifyConfig(shop_url=server.url, token="tok", tenant_id="acme", page_size=2)
        result = pull_orders(engine, ShopifyClient(config), tenants={"acme"})
    assert result.resumed and (result.pages, result.inserted, result.duplicates) == (3, 5, 0)
    assert _count(engine, count, s=server.url) == 9
    assert _count(engine, "select count(distinct order_id) from raw.shopify_orders where shop = :s", s=server.url) == 9
    assert read_cursor(engine, server.url).high_water_mark == T0 + timedelta(minutes=8)


def test_dlq_replay_after_a_seed_fix_then_attempts_failed_and_discard(engine, reference, events_dir, tmp_path, uid):
    tenant = f"t{uid}"
    good = order_timeline(f"R{uid}-1", tenant=tenant)[:2]
    path = write_jsonl(events_dir / f"dlq-{uid}.jsonl", [*good, '{"event_id": "half a record'])
    first = ingest_file(engine, path, reference)
    assert (first.loaded, first.rejected) == (0, 3)

    def ids() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                r[1]: r[0]
                for r in conn.execute(
                    sa.text("select rejected_id, location from ops.rejected_records where location like :f"),
                    {"f": f"{path.name}:%"},
                )
            }

    # Nothing changed yet: replay fails again, attempts go up, nothing loads.
    before = replay(engine, reference, ids=list(ids().values()), max_attempts=3)
    assert (len(before.replayed), len(before.still_failing), before.loaded_rows) == (0, 3, 0)

    # The seed fix: the tenant now exists.
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    with (seeds / "tenants.csv").open("a") as fh:
        fh.write(f"{tenant},Fixed Tenant,USD,America/New_York,NJ1,0.01,0,25.00,true\n")
    fixed = Reference.load(seeds)
    after = replay(engine, fixed, ids=list(ids().values()), max_attempts=3)
    assert (len(after.replayed), after.loaded_rows) == (2, 2)
    assert after.marked_failed == [ids()[f"{path.name}:3"]]  # third attempt for the broken line
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select location, status, attempts, error_code from ops.rejected_records where location like :f "
                "order by location"
            ),
            {"f": f"{path.name}:%"},
        ).all()
        loaded = conn.execute(
            sa.text(
                "select event_type, file_name, line_number from raw.order_events "
                "where order_id = :o order by line_number"
            ),
            {"o": f"R{uid}-1"},
        ).all()
    assert [tuple(r) for r in rows] == [
        (f"{path.name}:1", "replayed", 3, "unknown_tenant"),
        (f"{path.name}:2", "replayed", 3, "unknown_tenant"),
        (f"{path.name}:3", "failed", 3, "malformed_json"),
    ]
    assert [tuple(r) for r in loaded] == [("order_created", path.name, 1), ("order_paid", path.name, 2)]

    # A replayed record is done: asking again touches nothing and loads nothing twice.
    again = replay(engine, fixed, ids=[ids()[f"{path.name}:1"]])
    assert (again.replayed, again.still_failing, again.marked_failed, again.loaded_rows) == ([], [], [], 0)
    assert discard(engine, [ids()[f"{path.name}:3"], ids()[f"{path.name}:1"]]) == 1  # a replayed one stays
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from ops.rejected_records where location = :l"), {"l": f"{path.name}:3"}
        ).scalar_one()
    assert status == "discarded"
    with engine.begin() as conn:  # the tenant exists only in this test's seed copy: leave the shared marts valid
        conn.execute(sa.text("delete from raw.order_events where tenant_id = :t"), {"t": tenant})
