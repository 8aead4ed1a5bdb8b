"""Shared test fixtures: one real PostgreSQL database and one dbt build per session.

The database is ``E2A_TEST_DATABASE_URL`` if set, else a dedicated embedded server (``.e2a/test-home``) with a
fresh ``e2a_test`` database each session. Tests isolate themselves by order id, file name or schema.

The clock is pinned for the whole session: ``E2A_NOW`` = ``SESSION_NOW`` (lib/core/clock.py), so no test depends on
the wall clock, the hour or the day. A test that needs time to pass moves the pinned clock
(``monkeypatch.setenv("E2A_NOW", ...)``), never sleeps. The machine clock may be any instant from
``MACHINE_CLOCK_FLOOR`` on: what still follows it are bookkeeping stamps (``ingested_at``: an event must not
have occurred after it was ingested) and the daily partitions Dagster has created so far. CI runs the SLA and
pipeline tests with the machine clock faked (``faketime``, ``.ci/run``) to prove it."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core.database import ConnectionInfo, EmbeddedServer, make_engine
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.core.schema import migrate
from e2a_dagster.lib.core.settings import PROJECT_ROOT, SETTINGS_ENV

TEST_DB = "e2a_test"

# Tuesday 2026-11-24 10:00 in New York (EST), 16:00 in Berlin (CET): the instant every live build, schedule,
# sensor and simulation of the session treats as now.
SESSION_NOW = "2026-11-24T15:00:00+00:00"
# The first daily billing partition. Every test's billing days are in July 2026 or later (the invoice guard's
# 2031 months are pinned dbt builds, not partitions); the default (2025-01-01) would give `e2a run` and the
# pipeline test ~700 partitions to plan and record. Read when the definitions are imported: set it here.
SESSION_BILLING_START = "2026-07-01"


# The latest business instant a test ingests through the plausibility check (the CLI test's simulated history
# ends 2026-10-29) or runs a daily partition of (July 2026), rounded up.
MACHINE_CLOCK_FLOOR = datetime(2026, 11, 1, tzinfo=UTC)


def pytest_configure(config) -> None:
    os.environ["E2A_NOW"] = SESSION_NOW
    os.environ["E2A_BILLING_START"] = SESSION_BILLING_START
    # Every setting present (empty is unset, the default), as `e2a dev` gives its code location
    # (lib/core/settings.py child_env): the session's code location then reads each one as a dg.EnvVar when a run
    # starts, so a test that sets one later is seen (a setting absent at load would be a fixed empty value).
    for name in SETTINGS_ENV.values():
        os.environ.setdefault(name, "")
    if datetime.now(UTC) < MACHINE_CLOCK_FLOOR:  # the one read of the machine clock: a guard, not a test
        raise pytest.UsageError(
            f"the machine clock ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC) is before {MACHINE_CLOCK_FLOOR:%Y-%m-%d}: "
            "the test data would lie in its future (see tests/conftest.py)"
        )


@pytest.fixture(autouse=True)
def _environment_is_restored():
    """A test leaves ``os.environ`` as it found it (after the session and module fixtures it uses set theirs up).

    E²A's own code never writes it (tests/unit/test_no_environ_writes.py); this holds the tests themselves and
    the libraries under test to it, so a test that points ``E2A_DATABASE_URL`` at another database cannot send
    every later dbt run of the session there."""
    before = dict(os.environ)
    yield
    if os.environ != before:
        os.environ.clear()
        os.environ.update(before)


def _fresh_database(info: ConnectionInfo) -> ConnectionInfo:
    target = info.with_dbname(TEST_DB)
    with psycopg.connect(info.with_dbname("postgres").url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{TEST_DB}" with (force)')
        conn.execute(f'create database "{TEST_DB}"')
    return target


@pytest.fixture(scope="session")
def pg_info(tmp_path_factory) -> ConnectionInfo:
    url = os.environ.get("E2A_TEST_DATABASE_URL")
    if url:
        info = ConnectionInfo.from_url(url)
    else:
        home = Path(os.environ.get("E2A_TEST_HOME", PROJECT_ROOT / ".e2a" / "test-home"))
        info = EmbeddedServer(home).start()
        info = _fresh_database(info)
    state = tmp_path_factory.mktemp("e2a-home")
    os.environ["E2A_HOME"] = str(state)
    os.environ["DAGSTER_HOME"] = str(state / "dagster")
    (state / "dagster").mkdir()
    os.environ["E2A_DATABASE_URL"] = info.url()
    os.environ.update(info.dbt_env())
    return info


@pytest.fixture(scope="session")
def engine(pg_info) -> sa.Engine:
    eng = make_engine(pg_info)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture(scope="session")
def dbt_manifest(pg_info) -> Path:
    from e2a_dagster.lib.core.dbt import parse_project

    return parse_project()


@pytest.fixture(scope="session")
def definitions(dbt_manifest):
    """The real code location (every asset, check, job, schedule, sensor and resource), loaded once. dbt runs
    from this interpreter's venv, as the product's commands run it."""
    import sys

    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    from e2a_dagster.definitions import defs

    return defs()


@pytest.fixture(scope="session")
def dbt_seeded(engine, pg_info, dbt_manifest) -> None:
    from e2a_dagster.lib.core.dbt import run_dbt

    run_dbt(["seed", "--quiet"], pg_info)


@pytest.fixture
def uid() -> str:
    """A short unique token for ids (order ids, event ids, file names) so tests never collide."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def events_dir(tmp_path) -> Path:
    path = tmp_path / "events"
    path.mkdir()
    return path
