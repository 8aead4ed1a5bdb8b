"""No code of E²A writes the process environment (issue 14): settings reach the code location through the
settings resource (defs/resources.py ``E2ASettings``, ``dg.EnvVar``), dbt gets its connection as an explicit env
(``DbtCli.cli``), and a child process gets an environment of its own (lib/core/settings.py ``child_env``).

The scan reads the syntax tree of every module in ``e2a_dagster/`` and ``sensors/``. Allowed exceptions: none."""

from __future__ import annotations

import ast
from pathlib import Path

from e2a_dagster.lib.core.settings import PROJECT_ROOT

SCANNED = ("e2a_dagster", "sensors")
ALLOWED: set[tuple[str, int]] = set()  # (path relative to the repository, line): none today
MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def environ_writes(source: str) -> list[int]:
    """Lines of ``source`` that write the process environment."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in MUTATORS and _is_environ(func.value):
                lines.append(node.lineno)
            if func.attr in ("putenv", "unsetenv") and isinstance(func.value, ast.Name) and func.value.id == "os":
                lines.append(node.lineno)
    return sorted(lines)


def test_the_scan_finds_every_kind_of_write():
    source = "\n".join(
        [
            "import os",
            "from os import environ",
            "os.environ['A'] = '1'",
            "os.environ.update({'B': '2'})",
            "os.environ.setdefault('C', '3')",
            "del os.environ['A']",
            "os.environ.pop('B', None)",
            "environ['D'] = '4'",
            "os.putenv('E', '5')",
            "x = os.environ.get('F')",  # a read is not a write
            "env = {**os.environ, 'G': '7'}",
        ]
    )
    assert environ_writes(source) == [3, 4, 5, 6, 7, 8, 9]


def test_no_module_writes_the_process_environment():
    found = []
    for folder in SCANNED:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(PROJECT_ROOT))
            for line in environ_writes(path.read_text()):
                if (relative, line) not in ALLOWED:
                    found.append(f"{relative}:{line}")
    assert found == [], "writes to os.environ (pass an explicit env instead): " + ", ".join(found)


def test_the_scan_reads_the_modules_it_is_meant_to():
    assert Path(PROJECT_ROOT / "e2a_dagster" / "defs" / "resources.py").exists()
    assert len(list((PROJECT_ROOT / "e2a_dagster").rglob("*.py"))) > 30
