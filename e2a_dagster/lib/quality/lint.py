"""Policy lint: deterministic checks of the reference data in ``seeds/``, each finding with file, line and a
fix hint.

dbt's seed tests say *that* a table is wrong once it is loaded; the lint says *where* (file:line) and *how to
fix it*, before anything is loaded, and also covers what SQL tests express poorly (gaps between effective
ranges, time zones, holiday calendars, cutoffs inside opening hours).

This module reads the folder (its own CSV reader: findings need line numbers) and runs the registry of rules in
``lint_rules.py``, one small function per check, in a fixed order."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from e2a_dagster.lib.core.settings import reference_dir
from e2a_dagster.lib.quality.lint_rules import (
    CHARGE_CODES,
    OPEN_END_DATE,
    REQUIRED_COLUMNS,
    RULE_FOR_STAGE,
    RULES,
    STAGES,
    Finding,
    Folder,
    Row,
    Rule,
    is_iso_currency,
)

__all__ = [
    "CHARGE_CODES",
    "OPEN_END_DATE",
    "RULES",
    "RULE_FOR_STAGE",
    "STAGES",
    "Finding",
    "has_errors",
    "is_iso_currency",
    "lint_seeds",
    "load_folder",
    "run_rules",
]


def read_rows(folder: Folder, seeds_dir: Path, name: str, required: Iterable[str]) -> list[Row]:
    """The rows of ``name`` with their line numbers, cells stripped; a missing file or column is a finding (and
    no rows, so the rules skip the file)."""
    path = seeds_dir / name
    if not path.exists():
        folder.report(
            folder.error(name, 1, "missing_file", f"{name} does not exist", f"restore {name} from the repository")
        )
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            folder.report(
                folder.error(
                    name,
                    1,
                    "missing_column",
                    f"columns missing: {', '.join(missing)}",
                    "add the columns to the header line",
                )
            )
            return []
        return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]


def load_folder(seeds_dir: Path) -> Folder:
    """Every reference file of ``seeds_dir`` read once, in a fixed order (``REQUIRED_COLUMNS``)."""
    folder = Folder(seeds_dir.name, {})  # "seeds/<file>" for the default folder
    for name, required in REQUIRED_COLUMNS.items():
        folder.tables[name] = read_rows(folder, seeds_dir, name, required)
    return folder


def run_rules(seeds_dir: Path, rules: Sequence[Rule]) -> list[Finding]:
    """The findings of ``rules`` (in that order) on ``seeds_dir``, errors first, then by file, line and code."""
    folder = load_folder(seeds_dir)
    for rule in rules:
        for finding in rule.check(folder):
            folder.report(finding)
    order = {"error": 0, "warning": 1}
    return sorted(folder.reported, key=lambda f: (order[f.severity], f.file, f.line, f.code))


def lint_seeds(seeds_dir: Path | None = None) -> list[Finding]:
    """Every finding in the reference data of ``seeds_dir``, errors first, then by file and line."""
    return run_rules(seeds_dir or reference_dir(), RULES)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
