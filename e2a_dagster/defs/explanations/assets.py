"""Explanations: a narrative for every SLA exception, and the policy lint of the reference data."""

import dagster as dg

from e2a_dagster.defs.automation import LIVE, WITH_ITS_ASSET
from e2a_dagster.defs.resources import LLM, Database
from e2a_dagster.lib.core.reference import seeds_version
from e2a_dagster.lib.core.reports import markdown_table
from e2a_dagster.lib.explanations.writer import run_narratives
from e2a_dagster.lib.quality.lint import lint_seeds

SLA_EXCEPTIONS = dg.AssetKey(["marts", "fct_sla_exceptions"])
# Tables the narratives read besides the view: a dependency on them orders the narratives after the models
# in a run that rebuilds both (the wave: the view is not rebuilt, so it alone orders nothing).
SLA_EVALUATIONS = dg.AssetKey(["marts", "fct_sla_evaluations"])
ORDERS = dg.AssetKey(["marts", "fct_orders"])


class NarrativesConfig(dg.Config):
    marts_schema: str = "marts"
    """Schema holding fct_sla_exceptions, fct_sla_evaluations and fct_orders (another for scratch runs)."""


@dg.asset(
    key=["actions", "exception_narratives"],
    group_name="explanations",
    kinds={"python", "postgres"},
    deps=[SLA_EXCEPTIONS, SLA_EVALUATIONS, ORDERS],
    automation_condition=LIVE,
    description="An ops note and a client note for every new or changed SLA exception (LLM when configured, "
    "validated and grounded; else templates). Never fails the pipeline.",
)
def exception_narratives(
    context: dg.AssetExecutionContext, config: NarrativesConfig, database: Database, llm: LLM
) -> dg.MaterializeResult:
    llm_config = llm.config()
    if llm_config is None:
        context.log.info("no LLM configured (E2A_LLM_*): writing template narratives")
    summary = run_narratives(database.engine, llm_config, schema=config.marts_schema, log_fn=context.log.info)
    preview = [
        {
            "exception": r.item.exception_id[:12],
            "order": r.item.order_id,
            "stage": r.item.stage,
            "status": r.status,
            "label": r.draft.label,
            "client note": r.draft.client_note[:80],
        }
        for r in summary.rows[:10]
    ]
    return dg.MaterializeResult(
        metadata={
            "exceptions": summary.exceptions,
            "written": summary.written,
            "cached": summary.cached,
            "retired": summary.retired,
            "llm_narratives": summary.llm,
            "template_narratives": summary.template,
            "by_status": summary.statuses,
            "tokens": summary.tokens,
            # No prices configured → no estimate (never a guessed price).
            "cost_estimate": float(summary.cost_estimate) if summary.cost_estimate is not None else None,
            "model": llm_config.model if llm_config else "template",
            "preview": dg.MetadataValue.md(markdown_table(preview) if preview else "_nothing new_"),
        }
    )


@dg.asset(
    key=["ops", "policy_lint"],
    group_name="explanations",
    kinds={"python"},
    # Once on a fresh home, then whenever the seeds change (code version = their hash).
    code_version=seeds_version(),
    automation_condition=LIVE,
    check_specs=[
        dg.AssetCheckSpec(
            "reference_data_has_no_lint_errors",
            asset=["ops", "policy_lint"],
            blocking=True,
            automation_condition=WITH_ITS_ASSET,
        ),
        dg.AssetCheckSpec(
            "reference_data_has_no_lint_warnings", asset=["ops", "policy_lint"], automation_condition=WITH_ITS_ASSET
        ),
    ],
    description="Deterministic lint of seeds/ (`e2a lint`): overlapping or gapped ranges, unknown "
    "references, time zones, cutoffs, allowances, severity thresholds, tiers, rates, currencies.",
)
def policy_lint(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    findings = lint_seeds()
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    table = (
        markdown_table(
            [
                {
                    "where": f"{f.file}:{f.line}",
                    "severity": f.severity,
                    "code": f.code,
                    "message": f.message,
                    "fix": f.hint,
                }
                for f in findings
            ]
        )
        if findings
        else "_clean_"
    )
    return dg.MaterializeResult(
        metadata={"errors": len(errors), "warnings": len(warnings), "findings": dg.MetadataValue.md(table)},
        check_results=[
            dg.AssetCheckResult(
                check_name="reference_data_has_no_lint_errors",
                passed=not errors,
                metadata={"errors": len(errors), "first": errors[0].format() if errors else ""},
            ),
            dg.AssetCheckResult(
                check_name="reference_data_has_no_lint_warnings",
                passed=not warnings,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"warnings": len(warnings)},
            ),
        ],
    )
