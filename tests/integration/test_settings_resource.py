"""The code location's settings come from one resource (defs/resources.py ``E2ASettings``; ``dg.EnvVar`` in the
definitions): the definitions load with no setting in the environment, and a run given its settings through the
resource alone needs none in the process environment, dbt included (its connection is an explicit env)."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg

from e2a_dagster.defs.resources import E2ASettings, with_settings
from e2a_dagster.lib.core.settings import PROJECT_ROOT, SETTINGS_ENV

DBT_CONNECTION = ("E2A_PG_HOST", "E2A_PG_PORT", "E2A_PG_USER", "E2A_PG_PASSWORD", "E2A_PG_DBNAME")
TENANTS = dg.AssetKey(["reference", "tenants"])


def test_the_definitions_load_with_no_setting_set(dbt_manifest):
    """A code location started by hand with no setting exported: every field is empty (unset, the defaults), so
    its runs are not refused; a setting it has (a secret here) is a dg.EnvVar, resolved when a run starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2A_", "DAGSTER_"))}
    code = (
        "from e2a_dagster.definitions import defs\n"
        "from e2a_dagster.lib.core.settings import SETTINGS_ENV\n"
        "settings = defs().resources['settings'].values\n"
        "for field in SETTINGS_ENV:\n"
        "    value = getattr(settings, field)\n"
        "    print(field, getattr(value, 'env_var_name', repr(value)))\n"
    )

    def fields(extra: dict[str, str]) -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.split("\n")[:-1]

    assert fields({}) == [f"{field} ''" for field in SETTINGS_ENV]
    assert fields({"E2A_SHOPIFY_TOKEN": "shpat_secret"}) == [
        f"{field} {name if name == 'E2A_SHOPIFY_TOKEN' else repr('')}" for field, name in SETTINGS_ENV.items()
    ]


def test_a_run_reads_its_settings_from_the_resource_alone(definitions, dbt_seeded, pg_info, tmp_path, monkeypatch):
    for name in (*SETTINGS_ENV.values(), *DBT_CONNECTION, "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    settings = E2ASettings.from_values({"E2A_HOME": str(home), "E2A_DATABASE_URL": pg_info.url()})
    job = with_settings(definitions, settings).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=[TENANTS], raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    assert TENANTS in {m.asset_key for m in result.asset_materializations_for_node("e2a_dbt_models")}
    # dbt ran (its seed is in the database) in a target folder under the resource's E2A_HOME ...
    assert [p.name.split("-")[0] for p in (home / "dbt-targets").iterdir()] == ["e2a_dbt_models"]
    # ... and nothing was put into the process environment for it.
    assert not {*SETTINGS_ENV.values(), *DBT_CONNECTION} & set(os.environ)
