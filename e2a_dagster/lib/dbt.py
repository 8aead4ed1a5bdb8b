"""Running the dbt CLI outside Dagster (set-up steps: ``dbt parse`` so definitions can load, seeds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from e2a_dagster.lib.database import ConnectionInfo
from e2a_dagster.lib.settings import DBT_PROJECT_DIR

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


def dbt_executable() -> str:
    """The ``dbt`` next to the running interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "dbt"
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if not found:
        raise RuntimeError("dbt is not installed in this environment (pip install -e .)")
    return found


def run_dbt(args: list[str], info: ConnectionInfo | None = None, *, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if info is not None:
        env.update(info.dbt_env())
    cmd = [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"`dbt {' '.join(args)}` failed:\n{tail}")
    return proc


def parse_project() -> Path:
    """Write ``dbt_project/target/manifest.json`` (no database needed); Dagster loads the dbt assets from it."""
    run_dbt(["parse", "--quiet"])
    return MANIFEST


def upstream_relations(tag: str, manifest: Path = MANIFEST) -> list[str]:
    """``schema.name`` of every relation the models tagged ``tag`` read that are not tagged ``tag`` themselves
    (staging views, seeds, sources): what must exist before a build of just that tag can run its tests."""
    data = json.loads(manifest.read_text())
    nodes = {**data["nodes"], **data["sources"]}
    tagged = {uid for uid, node in data["nodes"].items() if node["resource_type"] == "model" and tag in node["tags"]}
    relations = set()
    for uid in tagged:
        for parent in nodes[uid]["depends_on"]["nodes"]:
            node = nodes.get(parent)
            if parent in tagged or node is None or node["resource_type"] not in ("model", "seed", "source"):
                continue
            relations.add(f"{node['schema']}.{node.get('identifier') or node['alias']}")
    return sorted(relations)
