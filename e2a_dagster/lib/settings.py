"""Runtime configuration, read from the environment when asked for (never at import time).

Everything E²A keeps on disk lives under one state folder, ``E2A_HOME`` (default ``./.e2a``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SEEDS_DIR = PROJECT_ROOT / "seeds"


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
