"""Every resource E²A's code location uses, in one place. Their settings come from one resource,
``E2ASettings``, whose fields the definitions configure with ``dg.EnvVar``: read when a run starts, never at
import, and never written back to the process environment (dbt gets its connection as an explicit env)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject
from dagster_dbt.asset_utils import (
    DBT_INDIRECT_SELECTION_ENV,
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from dagster_dbt.dagster_dbt_translator import validate_opt_translator
from dagster_dbt.dbt_manifest import validate_manifest
from packaging import version
from pydantic import PrivateAttr

from e2a_dagster.lib.actions.notify import WebhookClient
from e2a_dagster.lib.core.database import ConnectionInfo, make_engine, resolve_connection
from e2a_dagster.lib.core.dbt import dbt_executable, reference_env
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.core.schema import migrate
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, SETTINGS_ENV, Settings, load_settings, reference_dir
from e2a_dagster.lib.explanations.llm import LLMConfig, config_from_env
from e2a_dagster.lib.ingestion.shopify import ShopifyClient, ShopifyConfig

# The manifest is prepared once by set-up (`e2a dev`, `e2a run`, the test session: lib/core/dbt.py parse_project) and
# only read here: no `prepare_if_dev()`, which would run `dbt parse` in every run and step process.
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class SettingsConfig(dg.Config):
    """The code location's settings (README "Configuration"; names in lib/core/settings.py ``SETTINGS_ENV``).

    The definitions set every field to its ``dg.EnvVar`` (``E2ASettings.from_env``); an empty value is unset (the
    default). A field left ``None`` (a resource built by hand, as tests and sensor contexts do) is the process
    environment's value when asked for. Every resource holds the same one, so a run sees one set of settings.
    A config, not a nested resource: a resource with a nested resource is a context manager to Dagster, which a
    sensor or schedule context built without ``with`` refuses."""

    home: str | None = None
    database_url: str | None = None
    landing_dir: str | None = None
    reference_dir: str | None = None
    notify_webhook_url: str | None = None
    shopify_url: str | None = None
    shopify_token: str | None = None
    shopify_tenant: str | None = None
    shopify_api_version: str | None = None

    def environ(self) -> dict[str, str]:
        """The settings as the variables lib/ functions read (``SETTINGS_ENV`` names)."""
        given = {name: value for field, name in SETTINGS_ENV.items() if (value := getattr(self, field)) is not None}
        if len(given) == len(SETTINGS_ENV):
            return given
        return {**os.environ, **given}  # built by hand: the rest from the process environment, read now

    def settings(self) -> Settings:
        return load_settings(self.environ())

    def reference_folder(self) -> Path:
        return reference_dir(self.environ())


class E2ASettings(dg.ConfigurableResource):
    """The settings resource (key ``settings``): the ``SettingsConfig`` every other resource holds."""

    values: SettingsConfig

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> E2ASettings:
        """Each setting the code location's environment has, as its ``dg.EnvVar`` (resolved by Dagster when a run
        starts, never shown as a value in the UI); one it lacks is empty, i.e. unset: a code location started by
        hand (``dagster dev -m e2a_dagster.definitions``) with none of them runs on the defaults, where a
        ``dg.EnvVar`` of an absent variable would refuse every run. ``e2a dev`` gives it all of them."""
        env = os.environ if environ is None else environ
        values = {field: dg.EnvVar(name) if name in env else "" for field, name in SETTINGS_ENV.items()}
        return cls(values=SettingsConfig(**values))

    @classmethod
    def from_values(cls, environ: Mapping[str, str]) -> E2ASettings:
        """Every setting from ``environ`` now (absent = unset): the CLI's in-process run (``e2a run``)."""
        return cls(values=SettingsConfig(**{field: environ.get(name) or "" for field, name in SETTINGS_ENV.items()}))

    def environ(self) -> dict[str, str]:
        return self.values.environ()

    def settings(self) -> Settings:
        return self.values.settings()

    def reference_folder(self) -> Path:
        return self.values.reference_folder()


def _settings(values: SettingsConfig | None) -> SettingsConfig:
    return values if values is not None else SettingsConfig()


def dbt_env(values: SettingsConfig | None) -> dict[str, str]:
    """What every dbt command needs besides the process environment: the connection (``E2A_PG_*``, the same
    database the ``Database`` resource opens) and the seed path of the operator's reference folder (lib/core/dbt.py
    ``reference_env``)."""
    settings = _settings(values)
    return {**resolve_connection(settings.settings()).dbt_env(), **reference_env(settings.environ())}


class Database(dg.ConfigurableResource):
    """The PostgreSQL database (``E2A_DATABASE_URL`` or the embedded server in ``E2A_HOME``).

    Opening it brings the schema up to date. ``dbt_env`` is the same connection for dbt's ``profiles.yml``
    (given to the dbt resource, never exported to the process environment), so dbt and Python always talk to
    the same database."""

    settings: SettingsConfig | None = None

    _info: ConnectionInfo | None = PrivateAttr(default=None)
    _engine: sa.Engine | None = PrivateAttr(default=None)

    @property
    def info(self) -> ConnectionInfo:
        if self._info is None:
            self._info = resolve_connection(_settings(self.settings).settings())
        return self._info

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = make_engine(self.info)
            migrate(self._engine)
        return self._engine


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt CLI resource with an explicit environment for dbt, and without two costs it pays in
    every run before dbt starts (2.8 s of a 12-second live wave on 2 cores): ``dbt --version`` in a subprocess
    to learn the version of the executable, and a dbt adapter opened in the run's own process, which only
    ``fetch_column_metadata`` and ``fetch_row_counts`` use (E²A calls neither: its figures come from its own
    queries).

    The environment: dagster-dbt 0.29.27 has no public hook for the variables of the dbt process (``cli``
    builds them from ``os.environ``), so ``cli`` is overridden below with dagster-dbt's own body plus one merge:
    ``dbt_env(settings)`` (when given) and the ``env`` argument, above the process environment and below dagster-dbt's
    own variables. Upgrading dagster-dbt means comparing this method with its ``DbtCliResource.cli``
    (tests/unit/test_dbt_resource.py holds the variables to what dbt receives)."""

    settings: SettingsConfig | None = None

    _dbt_env: dict[str, str] | None = PrivateAttr(default=None)

    @cached_property
    def _cli_version(self) -> version.Version:
        # The venv's own dbt (lib/core/dbt.py dbt_executable) is the dbt-core this interpreter imports.
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            from dbt.version import __version__

            return version.parse(__version__)
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args) -> None:  # type: ignore[override]
        return None

    def explicit_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables dbt gets on top of the process environment."""
        if self._dbt_env is None:
            self._dbt_env = dbt_env(self.settings) if self.settings is not None else {}
        return {**self._dbt_env, **(env or {})}

    def targets_root(self) -> Path:
        """Where each dbt command of a run writes its artifacts: ``E2A_HOME/dbt-targets``."""
        return _settings(self.settings).settings().home / "dbt-targets"

    def cli(  # type: ignore[override]
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest=None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context=None,
        target_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DbtCliInvocation:
        # dagster-dbt 0.29.27 DbtCliResource.cli, unchanged but for ``**self.explicit_env(env)``.
        dagster_dbt_translator = validate_opt_translator(dagster_dbt_translator) or DagsterDbtTranslator()
        manifest = validate_manifest(manifest) if manifest else {}
        cleaned_args, runtime_selects, runtime_excludes = extract_runtime_selection_from_args(args)
        updated = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest=manifest,
            dagster_dbt_translator=dagster_dbt_translator,
            runtime_selects=runtime_selects,
            runtime_excludes=runtime_excludes,
        )
        target_path = target_path or self._get_unique_target_path(context=context)
        project_dir = Path(updated.dbt_project.project_dir if updated.dbt_project else self.project_dir)
        process_env = {
            "PYTHONLEGACYWINDOWSSTDIO": "1",
            **os.environ.copy(),
            **self.explicit_env(env),
            "DAGSTER_DBT_CLI": "true",
            "PYTHONUNBUFFERED": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_LOG_FORMAT": "json",
            "DBT_TARGET_PATH": os.fspath(target_path),
            "DBT_LOG_PATH": os.fspath(target_path),
            **({"DBT_PROFILES_DIR": self.profiles_dir} if self.profiles_dir else {}),
            "DBT_PROJECT_DIR": str(project_dir),
        }
        if updated.indirect_selection:
            process_env[DBT_INDIRECT_SELECTION_ENV] = updated.indirect_selection
        profile_args: list[str] = ["--profile", self.profile] if self.profile else []
        if self.target:
            profile_args += ["--target", self.target]
        full_args = [
            self.dbt_executable,
            *self.global_config_flags,
            *cleaned_args,
            *profile_args,
            *updated.selection_args,
        ]
        if not target_path.is_absolute():
            target_path = project_dir.joinpath(target_path)
        with contextlib.chdir(project_dir):
            return DbtCliInvocation.run(
                args=full_args,
                env=process_env,
                manifest=updated.manifest,
                dagster_dbt_translator=updated.dagster_dbt_translator,
                project_dir=project_dir,
                target_path=target_path,
                raise_on_error=raise_on_error,
                context=context,
                adapter=None,  # _initialize_dbt_core_adapter: none (see the class doc)
                cli_version=self._cli_version,
                dbt_project=updated.dbt_project,
            )


class LandingZone(dg.ConfigurableResource):
    """The folder that file-based sources drop into (``E2A_LANDING_DIR``, default ``E2A_HOME/landing``), and
    the reference data they are checked against (``E2A_REFERENCE_DIR``, default ``seeds/``)."""

    settings: SettingsConfig | None = None

    @property
    def root(self) -> Path:
        return _settings(self.settings).settings().landing_dir

    @property
    def events_dir(self) -> Path:
        return _settings(self.settings).settings().events_dir

    @property
    def billing_dir(self) -> Path:
        return _settings(self.settings).settings().billing_dir

    def reference(self) -> Reference:
        """Read fresh on every call: a seed fix is seen by the next run without a restart."""
        return Reference.load(_settings(self.settings).reference_folder())


class LLM(dg.ConfigurableResource):
    """The OpenAI-compatible LLM behind explanations, configured from ``E2A_LLM_*`` when a run asks for it.

    Optional by design: unset, ``config()`` is None and narratives come from templates (``generator =
    template``). The key is never logged or stored."""

    def config(self) -> LLMConfig | None:
        return config_from_env()


class Notifier(dg.ConfigurableResource):
    """The notification webhook (Slack-compatible). ``webhook_url`` unset -> the settings'
    ``E2A_NOTIFY_WEBHOOK_URL``; neither set -> notifications are off (recorded as skipped, nothing sent)."""

    settings: SettingsConfig | None = None
    webhook_url: str | None = None
    retries: int = 3
    backoff_seconds: float = 1.0
    min_interval_seconds: float = 1.0
    max_per_run: int = 50
    max_attempts: int = 8

    @property
    def url(self) -> str | None:
        return self.webhook_url or _settings(self.settings).environ().get("E2A_NOTIFY_WEBHOOK_URL") or None

    def client(self) -> WebhookClient:
        assert self.url, "notifications are off (no webhook URL)"
        return WebhookClient(
            self.url, retries=self.retries, backoff=self.backoff_seconds, min_interval=self.min_interval_seconds
        )


def resources_from(settings: E2ASettings) -> dict[str, dg.ConfigurableResource]:
    """Every resource of the code location, all reading ``settings``."""
    values = settings.values
    return {
        "settings": settings,
        "database": Database(settings=values),
        "landing": LandingZone(settings=values),
        "shopify": ShopifyShop(settings=values),
        "llm": LLM(),
        "notifier": Notifier(settings=values),
        "dbt": DbtCli(
            project_dir=dbt_project,
            profiles_dir=os.fspath(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
            settings=values,
        ),
    }


def with_settings(definitions: dg.Definitions, settings: E2ASettings) -> dg.Definitions:
    """``definitions`` with every resource reading ``settings`` in place of the ``dg.EnvVar`` ones: a run in a
    process whose environment is not the code location's (``e2a run``, a test). Dagster binds resources to
    assets by key when a job is resolved, so they are replaced here, before, not at execution."""
    return dg.Definitions(
        assets=definitions.assets,
        asset_checks=definitions.asset_checks,
        schedules=definitions.schedules,
        sensors=definitions.sensors,
        jobs=definitions.jobs,
        executor=definitions.executor,
        loggers=definitions.loggers,
        metadata=definitions.metadata,
        resources={**(definitions.resources or {}), **resources_from(settings)},
    )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=resources_from(E2ASettings.from_env()))


class ShopifyShop(dg.ConfigurableResource):
    """The Shopify shop to pull (``E2A_SHOPIFY_URL``, ``E2A_SHOPIFY_TOKEN``, ``E2A_SHOPIFY_TENANT``).

    From the settings resource (``dg.EnvVar``, resolved when a run starts), so the token never appears in run
    configuration, the Dagster UI or logs; unset means the source is off (the sensor says so)."""

    settings: SettingsConfig | None = None
    api_version: str | None = None

    def shop_config(self) -> ShopifyConfig:
        overrides = {"api_version": self.api_version} if self.api_version else {}
        return ShopifyConfig.from_env(_settings(self.settings).environ(), **overrides)

    def client(self, config: ShopifyConfig | None = None) -> ShopifyClient:
        return ShopifyClient(config or self.shop_config())
