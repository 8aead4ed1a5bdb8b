"""Shared test fixtures: one real PostgreSQL database and one dbt build per session.

The database is ``E2A_TEST_DATABASE_URL`` if set, else a dedicated embedded server (``.e2a/test-home``) with a
fresh ``e2a_test`` database each session. Tests isolate themselves by order id, file name or schema."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from e2a_dagster.lib.database import ConnectionInfo, EmbeddedServer, make_engine
from e2a_dagster.lib.reference import Reference
from e2a_dagster.lib.schema import migrate
from e2a_dagster.lib.settings import PROJECT_ROOT

TEST_DB = "e2a_test"


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
    from e2a_dagster.lib.dbt import parse_project

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
    from e2a_dagster.lib.dbt import run_dbt

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
