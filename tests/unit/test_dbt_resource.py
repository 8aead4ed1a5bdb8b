"""The code location's dbt resource (defs/resources.py DbtCli) knows the dbt version without asking the
executable, and it is the version the executable itself reports."""

from __future__ import annotations

import os

from dagster_dbt import DbtCliResource

from e2a_dagster.defs.resources import DbtCli, dbt_project
from e2a_dagster.lib.core.dbt import dbt_executable
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR


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


FAKE_DBT = """#!{python}
import json, os, sys
if sys.argv[1:] == ["--version"]:
    print("Core:\\n  - installed: 1.11.0")
    sys.exit(0)
os.makedirs(os.environ["DBT_TARGET_PATH"], exist_ok=True)  # dagster-dbt makes it only to copy a partial parse
with open(os.path.join(os.environ["DBT_TARGET_PATH"], "env.json"), "w") as out:
    json.dump(dict(os.environ), out)
"""


def test_dbt_gets_the_explicit_env_above_the_process_and_below_dagster_dbt(tmp_path, monkeypatch):
    """DbtCli.cli (dagster-dbt's own body plus one merge): the variables given to it reach the dbt process; the
    process environment is below them; dagster-dbt's own (DBT_TARGET_PATH, DBT_LOG_FORMAT) are above them."""
    import json
    import sys

    fake = tmp_path / "dbt"
    fake.write_text(FAKE_DBT.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("E2A_TEST_FROM_PROCESS", "process")
    monkeypatch.setenv("E2A_TEST_OVERRIDDEN", "process")
    dbt = DbtCli(project_dir=dbt_project, profiles_dir=os.fspath(DBT_PROJECT_DIR), dbt_executable=str(fake))
    target = tmp_path / "target"
    explicit = {"E2A_TEST_OVERRIDDEN": "explicit", "E2A_TEST_EXPLICIT": "explicit", "DBT_LOG_FORMAT": "text"}
    dbt.cli(["parse"], target_path=target, env=explicit).wait()
    seen = json.loads((target / "env.json").read_text())
    assert seen["E2A_TEST_FROM_PROCESS"] == "process"
    assert seen["E2A_TEST_OVERRIDDEN"] == "explicit"
    assert seen["E2A_TEST_EXPLICIT"] == "explicit"
    assert seen["DBT_LOG_FORMAT"] == "json"  # dagster-dbt reads dbt's JSON log: its own variables win
    assert seen["DBT_TARGET_PATH"] == str(target)
    assert "E2A_TEST_EXPLICIT" not in os.environ  # given to dbt, not to this process
