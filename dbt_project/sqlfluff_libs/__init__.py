"""What sqlfluff's jinja templater needs to render the models without dbt or a database (``.sqlfluff``:
``library_path``): the few dbt context members the project's macros use, rendered as dbt-postgres renders them.

Only for linting: the SQL these produce has the shape of dbt's, which is what the linter reads. The macros that
query the database (``is_live_incremental``, ``previous_build_literal``) are stubbed in ``.sqlfluff``."""

import re
from datetime import UTC, datetime
from types import SimpleNamespace

run_started_at = datetime(2026, 1, 1, tzinfo=UTC)
execute = False
modules = SimpleNamespace(re=re)


def _raise_compiler_error(message: str) -> None:
    raise RuntimeError(message)


exceptions = SimpleNamespace(raise_compiler_error=_raise_compiler_error)


def _dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"{from_date_or_timestamp} + ((interval '1 {datepart}') * ({interval}))"


def _date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def _hash(field: str) -> str:
    return f"md5(cast({field} as varchar))"


dbt = SimpleNamespace(dateadd=_dateadd, date_trunc=_date_trunc, hash=_hash)


def var(name: str, default: object = None) -> object:
    """Every dbt var at its default: a live build of every day (``as_of`` unset, no billing window)."""
    return default


def env_var(name: str, default: str | None = None) -> str:
    """Every environment variable unset: ``E2A_NOW`` empty, so ``as_of`` is the build's start."""
    return default if default is not None else ""
