"""The code location's dbt resource (defs/resources.py DbtCli) knows the dbt version without asking the
executable, and it is the version the executable itself reports."""

from __future__ import annotations

import os

from dagster_dbt import DbtCliResource

from e2a_dagster.defs.resources import DbtCli, dbt_project
from e2a_dagster.lib.dbt import dbt_executable
from e2a_dagster.lib.settings import DBT_PROJECT_DIR


def test_the_dbt_version_is_the_one_the_executable_reports():
    kwargs = {
        "project_dir": dbt_project,
        "profiles_dir": os.fspath(DBT_PROJECT_DIR),
        "dbt_executable": dbt_executable(),
    }
    ours = DbtCli(**kwargs)
    asked = DbtCliResource(**kwargs)._cli_version  # `dbt --version` in a subprocess
    assert ours._cli_version == asked
    assert asked.major == 1 and asked.minor == 11  # pyproject pins dbt-core 1.11
    assert ours._initialize_dbt_core_adapter(["build"]) is None
