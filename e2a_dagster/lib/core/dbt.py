"""Running the dbt CLI outside Dagster (set-up steps: ``dbt parse`` so definitions can load, seeds), and the
target folders every dbt command writes into.

The shared ``dbt_project/target/manifest.json`` is written only by ``parse_project`` (set-up: ``e2a dev``,
``e2a run``, the test session), atomically; runs and other commands only read it. Every other dbt command, in a
run or not, writes its artifacts and logs into a target folder of its own, so concurrent commands never share
one (nor dbt's file locks)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

from e2a_dagster.lib.core.database import ConnectionInfo
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, REFERENCE_ENV, reference_dir

TARGET = DBT_PROJECT_DIR / "target"
MANIFEST = TARGET / "manifest.json"
PARTIAL_PARSE = "partial_parse.msgpack"
# dbt's seed-paths when the reference data is the operator's folder (reference_env).
SEED_PATH_ENV = "E2A_DBT_SEED_PATH"
SEED_LINKS = DBT_PROJECT_DIR / ".reference"
# Target folders of runs' dbt commands kept for a look after the fact (newest first); older ones are removed.
KEEP_RUN_TARGETS = 20
# What the product's `dbt build`s leave out: dbt unit tests check the models' SQL against fixed inputs, not the
# data, so they belong to the test suite (tests/e2e/test_dbt_unit_tests.py runs every one), not to every live
# wave (dbt's own advice for production builds; they cost about 4 s a wave on 2 cores).
PRODUCT_BUILD_EXCLUDES = ("--exclude-resource-type", "unit_test")


def dbt_executable() -> str:
    """The ``dbt`` next to the running interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "dbt"
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if not found:
        raise RuntimeError("dbt is not installed in this environment (pip install -e .)")
    return found


def run_dbt(
    args: list[str], info: ConnectionInfo | None = None, *, check: bool = True, target_path: Path | None = None
) -> subprocess.CompletedProcess:
    """``dbt <args>`` on the project, its artifacts and log in ``target_path`` (else a temporary folder removed
    afterwards), never in the shared ``target/``. The shared partial-parse state is copied in, so the command
    does not parse the whole project again."""
    if target_path is None:
        with tempfile.TemporaryDirectory(prefix="e2a-dbt-") as tmp:
            return run_dbt(args, info, check=check, target_path=Path(tmp))
    seed_partial_parse(target_path)
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(target_path),
        **reference_env(),
    }
    if info is not None:
        env.update(info.dbt_env())
    cmd = [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"`dbt {' '.join(args)}` failed:\n{tail}")
    return proc


def reference_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """dbt's ``seed-paths`` (``E2A_DBT_SEED_PATH``) for the operator's folder ``E2A_REFERENCE_DIR``: a path
    relative to ``dbt_project/``, through a symbolic link ``dbt_project/.reference/<hash of the folder>`` to it.

    Never the folder's absolute path: dbt writes each seed's compiled SQL to ``<target>/run/e2a/<seed path>``,
    and with an absolute seed path that is the operator's CSV file itself (``dbt seed`` overwrote it). The link's
    name follows the folder, so commands for different folders never share one; it is replaced atomically.
    Unset stays unset: dbt's default is the repository's ``seeds/``, so every dbt command (ours and Dagster's)
    sees the same project configuration and partial parsing holds. ``environ``: where ``E2A_REFERENCE_DIR`` is
    read (default: the process environment; the code location passes its settings resource's)."""
    env = os.environ if environ is None else environ
    if not env.get(REFERENCE_ENV):
        return {}
    folder = reference_dir(env)
    link = SEED_LINKS / hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    if not (link.is_symlink() and os.readlink(link) == str(folder)):
        SEED_LINKS.mkdir(parents=True, exist_ok=True)
        staging = SEED_LINKS / f".{link.name}-{uuid.uuid4().hex[:8]}"
        os.symlink(folder, staging, target_is_directory=True)
        os.replace(staging, link)
    return {SEED_PATH_ENV: str(link.relative_to(DBT_PROJECT_DIR))}


def seed_partial_parse(target_path: Path) -> None:
    """Copy the shared partial-parse state into a fresh target folder (dbt then re-parses only what changed)."""
    source = TARGET / PARTIAL_PARSE
    target_path.mkdir(parents=True, exist_ok=True)
    if source.exists() and not (target_path / PARTIAL_PARSE).exists():
        shutil.copyfile(source, target_path / PARTIAL_PARSE)


def parse_project() -> Path:
    """Write ``dbt_project/target/manifest.json`` (no database needed); Dagster loads the dbt assets from it.

    dbt parses into a folder of its own; the manifest and the partial-parse state then replace the shared ones
    atomically, so a process reading the manifest meanwhile never sees half a file."""
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parse-", dir=TARGET) as tmp:
        run_dbt(["parse", "--quiet"], target_path=Path(tmp))
        for name in (PARTIAL_PARSE, "manifest.json"):
            os.replace(Path(tmp) / name, TARGET / name)
    return MANIFEST


def run_target(root: Path, label: str) -> Path:
    """A new target folder for one dbt command of a run: ``root/<label>-<random>``."""
    return root / f"{label}-{uuid.uuid4().hex[:8]}"


def prune_run_targets(root: Path, keep: int = KEEP_RUN_TARGETS) -> None:
    """Remove all but the ``keep`` newest target folders under ``root`` (each run leaves one per dbt command)."""
    if not root.exists():
        return
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)


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
