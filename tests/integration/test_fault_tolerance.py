"""Crash safety and the dead-letter queue, against the real PostgreSQL.

A subprocess is SIGKILLed in the middle of an ingestion transaction (landing file, Shopify pull); the database
crashes in the middle of a dbt build, and restarts in the middle of an ingestion run: after recovery the counts
are exact, nothing lost, nothing twice. The DLQ replays what a seed fix makes valid, counts attempts, marks
records that keep failing, and discards on request."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from e2a_dagster.defs.resources import Database
from e2a_dagster.defs.sla.assets import warehouse_calendar
from e2a_dagster.lib.core import database
from e2a_dagster.lib.core.dbt import dbt_executable, run_dbt
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, PROJECT_ROOT, SEEDS_DIR
from e2a_dagster.lib.ingestion.dlq import discard, replay
from e2a_dagster.lib.ingestion.ingest import ingest_file, load_files
from e2a_dagster.lib.ingestion.shopify import ShopifyClient, ShopifyConfig, pull_orders, read_cursor
from e2a_dagster.lib.simulator.mock_shopify import OrderStore, ServerThread, create_app
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
        from e2a_dagster.lib.core.database import ConnectionInfo, make_engine
        from e2a_dagster.lib.ingestion.ingest import ingest_file
        from e2a_dagster.lib.core.reference import Reference
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
            from e2a_dagster.lib.ingestion import shopify
            from e2a_dagster.lib.core.database import ConnectionInfo, make_engine
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


# ------------------------------------------------------------------------------------------------------------------
# The database going away: a crash in the middle of a dbt build, a restart in the middle of an ingestion run

embedded_only = pytest.mark.skipif(
    bool(os.environ.get("E2A_TEST_DATABASE_URL")), reason="crashes the embedded test server (not an external one)"
)


def _test_server(engine) -> database.EmbeddedServer:
    with engine.connect() as conn:
        pgdata = Path(conn.execute(sa.text("show data_directory")).scalar_one())
    return database.EmbeddedServer(pgdata.parent)


def _crash(server: database.EmbeddedServer) -> None:
    """Stop the server the way a crash does: every backend killed, no checkpoint (recovery on the next start)."""
    database._run_pg("pg_ctl", ["-D", str(server.pgdata), "-w", "-m", "immediate", "stop"], timeout=90)
    assert not server.is_running()


@embedded_only
def test_database_crash_mid_build_then_a_rerun_gives_exact_marts(
    engine, reference, pg_info, dbt_seeded, events_dir, uid, monkeypatch
):
    """Five complete orders (tests/helpers.order_timeline, acme NJ1, Mon 2026-03-02): pick due 11:05 (120 business
    minutes from 09:05), done 10:10; pack due 13:10, done 10:40; ship due 18:00 (paid before the 14:00 cutoff),
    collected 16:20; deliver (express, 2 carrier days) due Wed 03-04 24:00, delivered 15:00: every stage met."""
    monkeypatch.setenv("E2A_NOW", "2026-03-10T12:00:00+00:00")
    prefix = f"CR{uid}"
    events = [e for n in range(5) for e in order_timeline(f"{prefix}-{n}")]
    assert ingest_file(engine, write_jsonl(events_dir / f"{prefix}.jsonl", events), reference).loaded == 45
    assert dg.materialize([warehouse_calendar], resources={"database": Database()}).success
    run_dbt(["run", "--select", "+tag:sla"], pg_info)  # the marts exist; the next build is a live one
    server = _test_server(engine)
    more = [e for n in range(5, 8) for e in order_timeline(f"{prefix}-{n}")]
    assert ingest_file(engine, write_jsonl(events_dir / f"{prefix}-more.jsonl", more), reference).loaded == 27

    # Hold fct_sla_evaluations: the build commits the models before it, then waits there; the server crashes.
    blocker = psycopg.connect(pg_info.url())
    blocker.execute("lock table marts.fct_sla_evaluations in access exclusive mode")
    env = {**os.environ, **pg_info.dbt_env(), "PYTHONUNBUFFERED": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    build = subprocess.Popen(
        [
            dbt_executable(),
            "run",
            "--select",
            "+tag:sla",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(events_dir / "dbt-target"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert build.stdout is not None
        for line in build.stdout:  # blocks until dbt gets to the held model
            if "fct_sla_evaluations" in line and "START" in line:
                break
        else:
            pytest.fail("dbt never reached fct_sla_evaluations")
        _crash(server)
        assert build.wait(timeout=120) != 0  # the build failed with the server
    finally:
        build.kill()
        blocker.close()
    server.start()  # recovery; same port and socket

    with engine.connect() as conn:
        half = conn.execute(
            sa.text("select count(*) from intermediate.int_order_stages_scheduled where order_id like :p"),
            {"p": f"{prefix}-%"},
        ).scalar_one()
    assert half == 32  # the models before the crash committed (8 orders x 4 stages); the marts after did not
    run_dbt(["run", "--select", "+tag:sla"], pg_info)  # the re-run, live
    with engine.connect() as conn:
        orders = conn.execute(
            sa.text("select count(*) from marts.fct_orders where order_id like :p"), {"p": f"{prefix}-%"}
        ).scalar_one()
        statuses = conn.execute(
            sa.text(
                "select stage, status, count(*) from marts.fct_sla_evaluations where order_id like :p "
                "group by 1, 2 order by 1, 2"
            ),
            {"p": f"{prefix}-%"},
        ).all()
        exceptions = conn.execute(
            sa.text("select count(*) from marts.fct_sla_exceptions where order_id like :p"), {"p": f"{prefix}-%"}
        ).scalar_one()
        events_loaded = conn.execute(
            sa.text("select count(*) from raw.order_events where order_id like :p"), {"p": f"{prefix}-%"}
        ).scalar_one()
    assert (events_loaded, orders, exceptions) == (72, 8, 0)
    assert [tuple(r) for r in statuses] == [
        ("deliver", "met", 8),
        ("pack", "met", 8),
        ("pick", "met", 8),
        ("ship", "met", 8),
    ]


@embedded_only
def test_database_restart_mid_ingestion_run_is_retried_and_loads_each_file_once(engine, reference, events_dir, uid):
    files = [write_jsonl(events_dir / f"RS{uid}-{n}.jsonl", order_timeline(f"RS{uid}-{n}")) for n in range(3)]
    server = _test_server(engine)
    waits: list[float] = []

    def load(path: Path):
        if path == files[1] and not waits:
            _crash(server)  # the database goes away between two files of one run
        return ingest_file(engine, path, reference)

    def restart_while_waiting(seconds: float) -> None:  # the retry's backoff is when the server comes back
        waits.append(seconds)
        server.start()

    results, failures = load_files(files, load, db_retry_base=0.01, sleep=restart_while_waiting)
    assert failures == [] and len(waits) == 1  # one retry, then it went on
    assert [(r.file_name, r.loaded, r.rejected) for r in results] == [(f.name, 9, 0) for f in files]
    assert _count(engine, "select count(*) from raw.order_events where order_id like :p", p=f"RS{uid}-%") == 27
    assert _count(engine, "select count(*) from ops.ingested_files where file_name like :p", p=f"RS{uid}-%") == 3
