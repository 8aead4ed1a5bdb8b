"""The layout of ``e2a_dagster/lib/`` (docs/architecture.md, "Where the Python lives"): one subpackage per domain
of ``defs/`` plus the shared ``core`` and the ``simulator``, no flat modules, and no production code path that
imports the simulator or its oracles (only the demo commands of the CLI and the tests do)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from e2a_dagster.lib.core.settings import PROJECT_ROOT

LIB = PROJECT_ROOT / "e2a_dagster" / "lib"
DEFS = PROJECT_ROOT / "e2a_dagster" / "defs"
SIMULATOR = "e2a_dagster.lib.simulator"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_lib_is_one_subpackage_per_domain_with_no_flat_modules():
    domains = {p.name for p in DEFS.iterdir() if (p / "__init__.py").exists()} - {"dbt_models"}
    packages = {p.name for p in LIB.iterdir() if (p / "__init__.py").exists()}
    assert sorted(p.name for p in LIB.glob("*.py")) == ["__init__.py"]
    assert packages == domains | {"core", "simulator"}


def test_no_production_module_imports_the_simulator():
    production = [
        *(p for p in (PROJECT_ROOT / "e2a_dagster").rglob("*.py") if LIB / "simulator" not in p.parents),
        *(PROJECT_ROOT / "sensors").rglob("*.py"),
    ]
    importers = sorted(
        str(p.relative_to(PROJECT_ROOT))
        for p in production
        if any(name == SIMULATOR or name.startswith(SIMULATOR + ".") for name in _imports(p))
    )
    assert importers == ["e2a_dagster/cli.py"]  # e2a simulate and the demo feed of e2a dev


def test_loading_the_code_location_imports_no_simulator_module(dbt_manifest):
    code = (
        "import sys, e2a_dagster.definitions as d; d.defs().resolve_asset_graph(); "
        f"print(sorted(m for m in sys.modules if m.startswith('{SIMULATOR}')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
