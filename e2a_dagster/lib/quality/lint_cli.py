"""The ``e2a lint`` command (kept out of ``cli.py`` so the CLI module stays a thin table of commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from e2a_dagster.lib.core.reports import text_table
from e2a_dagster.lib.core.settings import reference_dir
from e2a_dagster.lib.quality.lint import has_errors, lint_seeds


def lint_command(seeds_dir: Path | None, *, ai: bool = False, as_json: bool = False) -> int:
    seeds = (seeds_dir or reference_dir()).resolve()
    findings = lint_seeds(seeds)
    errors = sum(f.severity == "error" for f in findings)
    report: dict = {"seeds": str(seeds), "findings": [f.as_dict() for f in findings]}
    if not as_json:
        for finding in findings:
            print(finding.format())
        print(f"{errors} error(s), {len(findings) - errors} warning(s)" if findings else f"no findings in {seeds}")
    if ai:
        report["ai"] = _ai(seeds, findings, quiet=as_json)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    return 1 if has_errors(findings) else 0


def _ai(seeds: Path, findings, *, quiet: bool) -> dict:
    from e2a_dagster.lib.explanations.llm import config_from_env

    config = config_from_env()
    if config is None:
        print(
            "--ai: no LLM configured (set E2A_LLM_MODEL and E2A_LLM_BASE_URL or E2A_LLM_API_KEY); skipped",
            file=sys.stderr,
        )
        return {"status": "not_configured"}
    from e2a_dagster.lib.core.database import make_engine, resolve_connection
    from e2a_dagster.lib.core.schema import migrate
    from e2a_dagster.lib.core.settings import load_settings
    from e2a_dagster.lib.quality.lint_ai import ai_review, run_scenarios

    review = ai_review(config, findings, seeds)
    out: dict = {"status": review.status, "tokens": review.tokens, "suggestions": review.suggestions}
    if review.scenarios:
        info = resolve_connection(load_settings())
        engine = make_engine(info)
        try:
            migrate(engine)
            results = run_scenarios(engine, info, review.scenarios)
        finally:
            engine.dispose()
        out["scenarios"] = [r.as_dict() for r in results]
    if not quiet:
        print(f"\nAI review: {review.status}")
        for s in review.suggestions:
            print(f"{s['file']}:{s['line']}: suggestion: {s['message']}")
        if out.get("scenarios"):
            print(
                text_table(
                    [
                        {
                            "scenario": r["name"],
                            "order": r["order_id"],
                            "verdict": r["verdict"],
                            "expected": json.dumps(r["expected"]),
                            "actual": json.dumps(r["actual"]),
                        }
                        for r in out["scenarios"]
                    ]
                )
            )
    return out
