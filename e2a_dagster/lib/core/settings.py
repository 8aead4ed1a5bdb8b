"""Runtime configuration, read from the environment when asked for (never at import time).

Everything E²A keeps on disk lives under one state folder, ``E2A_HOME`` (default ``./.e2a``).

The code location gets these settings through one resource configured with ``dg.EnvVar`` (defs/resources.py
``E2ASettings``, its fields named in ``SETTINGS_ENV``). Dagster refuses a run whose ``EnvVar`` is unset, so an
empty value means "unset, use the default" everywhere here, and whoever starts a code location passes every
name (``child_env``: ``e2a dev`` does). The CLI's own process reads them with ``load_settings``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The demo reference data that ships with E²A; an operator's own lives in ``E2A_REFERENCE_DIR`` (reference_dir).
SEEDS_DIR = PROJECT_ROOT / "seeds"
REFERENCE_ENV = "E2A_REFERENCE_DIR"


def reference_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of reference CSV files (same names and columns as ``seeds/``): ``E2A_REFERENCE_DIR``, read
    when asked for, else the repository's ``seeds/`` (the demo). Every reader (dbt seeds, the calendar, lint,
    narratives, the simulator, the code location, the CLI) resolves it here."""
    env = os.environ if environ is None else environ
    value = env.get(REFERENCE_ENV)
    return Path(value).expanduser().resolve() if value else SEEDS_DIR


# The settings of the code location: resource field -> environment variable (defs/resources.py E2ASettings).
SETTINGS_ENV = {
    "home": "E2A_HOME",
    "database_url": "E2A_DATABASE_URL",
    "landing_dir": "E2A_LANDING_DIR",
    "reference_dir": REFERENCE_ENV,
    "notify_webhook_url": "E2A_NOTIFY_WEBHOOK_URL",
    "shopify_url": "E2A_SHOPIFY_URL",
    "shopify_token": "E2A_SHOPIFY_TOKEN",
    "shopify_tenant": "E2A_SHOPIFY_TENANT",
    "shopify_api_version": "E2A_SHOPIFY_API_VERSION",
}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    landing_dir: Path
    dagster_dir: Path | None = None  # DAGSTER_HOME when set, else E2A_HOME/dagster

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.dagster_dir or self.home / "dagster"

    @property
    def events_dir(self) -> Path:
        return self.landing_dir / "events"

    @property
    def billing_dir(self) -> Path:
        return self.landing_dir / "billing"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.dagster_home, self.events_dir, self.billing_dir):
            path.mkdir(parents=True, exist_ok=True)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings in ``environ`` (default: the process environment, read now); empty = unset = default."""
    env = os.environ if environ is None else environ
    home = Path(env.get("E2A_HOME") or ".e2a").expanduser().resolve()
    landing = env.get("E2A_LANDING_DIR")
    dagster = env.get("DAGSTER_HOME")
    return Settings(
        home=home,
        database_url=env.get("E2A_DATABASE_URL") or None,
        landing_dir=Path(landing).expanduser().resolve() if landing else home / "landing",
        dagster_dir=Path(dagster).expanduser().resolve() if dagster else None,
    )


def child_env(settings: Settings, base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The environment of a process that loads the code location (``dagster dev``): ``base`` with ``E2A_HOME``
    and ``DAGSTER_HOME`` resolved, every ``SETTINGS_ENV`` name present (empty when unset, so the settings
    resource's ``dg.EnvVar`` resolves to the default), and ``extra`` (the dbt connection, the mock shop)."""
    env = {**{name: "" for name in SETTINGS_ENV.values()}, **base}
    env.update({"E2A_HOME": str(settings.home), "DAGSTER_HOME": str(settings.dagster_home), **extra})
    return env
