"""Every resource E²A's code location uses, in one place. Configuration comes from the environment at run time."""

from __future__ import annotations

import os
import sys
from functools import cached_property
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version
from pydantic import PrivateAttr

from e2a_dagster.lib.database import ConnectionInfo, make_engine, resolve_connection
from e2a_dagster.lib.dbt import dbt_executable, reference_env
from e2a_dagster.lib.llm import LLMConfig, config_from_env
from e2a_dagster.lib.notify import WebhookClient
from e2a_dagster.lib.reference import Reference
from e2a_dagster.lib.schema import migrate
from e2a_dagster.lib.settings import DBT_PROJECT_DIR, Settings, load_settings
from e2a_dagster.lib.shopify import ShopifyClient, ShopifyConfig

# The manifest is prepared once by set-up (`e2a dev`, `e2a run`, the test session: lib/dbt.py parse_project) and
# only read here: no `prepare_if_dev()`, which would run `dbt parse` in every run and step process.
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class Database(dg.ConfigurableResource):
    """The PostgreSQL database (``E2A_DATABASE_URL`` or the embedded server in ``E2A_HOME``).

    Opening it brings the schema up to date and exports the connection to dbt's ``profiles.yml`` variables, so
    dbt and Python always talk to the same database."""

    _info: ConnectionInfo | None = PrivateAttr(default=None)
    _engine: sa.Engine | None = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        return load_settings()

    @property
    def info(self) -> ConnectionInfo:
        if self._info is None:
            self._info = resolve_connection(self.settings)
        return self._info

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.info)
            migrate(self._engine)
            os.environ.update(self.info.dbt_env())
            os.environ.update(reference_env())  # dbt's seed-paths: a link to the reference folder
        return self._engine

    def export_dbt_env(self) -> None:
        _ = self.engine


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt CLI resource without two costs it pays in every run before dbt starts (2.8 s of a
    12-second live wave on 2 cores): ``dbt --version`` in a subprocess to learn the version of the executable,
    and a dbt adapter opened in the run's own process, which only ``fetch_column_metadata`` and
    ``fetch_row_counts`` use (E²A calls neither: its figures come from its own queries)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        # The venv's own dbt (lib/dbt.py dbt_executable) is the dbt-core this interpreter imports.
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            from dbt.version import __version__

            return version.parse(__version__)
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args) -> None:  # type: ignore[override]
        return None


class LandingZone(dg.ConfigurableResource):
    """The folder that file-based sources drop into (``E2A_LANDING_DIR``, default ``E2A_HOME/landing``)."""

    @property
    def root(self) -> Path:
        return load_settings().landing_dir

    @property
    def events_dir(self) -> Path:
        return load_settings().events_dir

    @property
    def billing_dir(self) -> Path:
        return load_settings().billing_dir

    def reference(self) -> Reference:
        """Read fresh on every call: a seed fix is seen by the next run without a restart."""
        return Reference.load()


class LLM(dg.ConfigurableResource):
    """The OpenAI-compatible LLM behind explanations, configured from ``E2A_LLM_*`` when a run asks for it.

    Optional by design: unset, ``config()`` is None and narratives come from templates (``generator =
    template``). The key is never logged or stored."""

    def config(self) -> LLMConfig | None:
        return config_from_env()


class Notifier(dg.ConfigurableResource):
    """The notification webhook (Slack-compatible). ``webhook_url`` unset -> ``E2A_NOTIFY_WEBHOOK_URL`` at run
    time; neither set -> notifications are off (recorded as skipped, nothing sent)."""

    webhook_url: str | None = None
    retries: int = 3
    backoff_seconds: float = 1.0
    min_interval_seconds: float = 1.0
    max_per_run: int = 50
    max_attempts: int = 8

    @property
    def url(self) -> str | None:
        return self.webhook_url or os.environ.get("E2A_NOTIFY_WEBHOOK_URL") or None

    def client(self) -> WebhookClient:
        assert self.url, "notifications are off (no webhook URL)"
        return WebhookClient(
            self.url, retries=self.retries, backoff=self.backoff_seconds, min_interval=self.min_interval_seconds
        )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "database": Database(),
            "landing": LandingZone(),
            "shopify": ShopifyShop(),
            "llm": LLM(),
            "notifier": Notifier(),
            "dbt": DbtCli(
                project_dir=dbt_project, profiles_dir=os.fspath(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
            ),
        }
    )


class ShopifyShop(dg.ConfigurableResource):
    """The Shopify shop to pull (``E2A_SHOPIFY_URL``, ``E2A_SHOPIFY_TOKEN``, ``E2A_SHOPIFY_TENANT``).

    Read from the environment when a run asks for it, so the token never appears in run configuration, the
    Dagster UI or logs; unset means the source is off (the sensor says so)."""

    api_version: str | None = None

    def shop_config(self) -> ShopifyConfig:
        overrides = {"api_version": self.api_version} if self.api_version else {}
        return ShopifyConfig.from_env(os.environ, **overrides)

    def client(self, config: ShopifyConfig | None = None) -> ShopifyClient:
        return ShopifyClient(config or self.shop_config())
