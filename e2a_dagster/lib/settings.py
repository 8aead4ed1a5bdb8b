"""Runtime configuration, read from the environment when asked for (never at import time).

Everything E²A keeps on disk lives under one state folder, ``E2A_HOME`` (default ``./.e2a``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The demo reference data that ships with E²A; an operator's own lives in ``E2A_REFERENCE_DIR`` (reference_dir).
SEEDS_DIR = PROJECT_ROOT / "seeds"
REFERENCE_ENV = "E2A_REFERENCE_DIR"


def reference_dir(environ: dict[str, str] | None = None) -> Path:
    """The folder of reference CSV files (same names and columns as ``seeds/``): ``E2A_REFERENCE_DIR``, read
    when asked for, else the repository's ``seeds/`` (the demo). Every reader (dbt seeds, the calendar, lint,
    narratives, the simulator, the code location, the CLI) resolves it here."""
    env = os.environ if environ is None else environ
    value = env.get(REFERENCE_ENV)
    return Path(value).expanduser().resolve() if value else SEEDS_DIR


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    landing_dir: Path

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def events_dir(self) -> Path:
        return self.landing_dir / "events"

    @property
    def billing_dir(self) -> Path:
        return self.landing_dir / "billing"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.dagster_home, self.events_dir, self.billing_dir):
            path.mkdir(parents=True, exist_ok=True)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get("E2A_HOME") or ".e2a").expanduser().resolve()
    landing = env.get("E2A_LANDING_DIR")
    return Settings(
        home=home,
        database_url=env.get("E2A_DATABASE_URL") or None,
        landing_dir=Path(landing).expanduser().resolve() if landing else home / "landing",
    )
