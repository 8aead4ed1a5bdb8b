"""``e2a lint --ai``: LLM suggestions on the reference data, and generated test scenarios that are *executed*
through the SLA engine in scratch schemas and reported as agreeing or not with the model's expectation.

Scenario format (JSON), one order each::

    {"name": "released after cutoff ships next day", "tenant_id": "acme", "warehouse_id": "NJ1",
     "carrier": "ups", "service_level": "ground", "as_of": "2026-03-04T12:00:00-05:00",
     "events": [{"event_type": "order_paid", "occurred_at": "2026-03-02T15:00:00-05:00"}, ...],
     "expected": {"ship": "met", "pick": "late"}}

``run_scenarios`` gives every scenario a unique order id, validates and loads its events into
``<prefix>_raw.order_events`` (a copy of ``raw.order_events``), runs ``dbt build --select
+fct_sla_evaluations`` (data tests excluded; seeds from the project's ``seeds/``) with ``--vars {as_of,
e2a_schema_prefix, e2a_raw_schema}`` (one build per distinct ``as_of``), reads
``<prefix>_marts.fct_sla_evaluations`` and drops the scratch schemas. Nothing touches the real schemas. The
input is reference data only: the prompt never sees orders or customers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from e2a_dagster.lib.core.clock import parse_instant
from e2a_dagster.lib.core.database import ConnectionInfo
from e2a_dagster.lib.core.reference import Reference
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, reference_dir
from e2a_dagster.lib.explanations.llm import LLMClient, LLMConfig, LLMError
from e2a_dagster.lib.explanations.prompts import Prompt
from e2a_dagster.lib.ingestion.events import CARRIER_EVENTS, ORDER_EVENTS, Rejected, parse_record, to_row
from e2a_dagster.lib.quality.lint import Finding

# Scenario builds parse the project with scratch schemas; their artifacts go here, so the project's own
# target/manifest.json (what Dagster loads, and where the real schemas are read from) is never replaced.
SCENARIO_TARGET = DBT_PROJECT_DIR / "target" / "lint-scenarios"

SCRATCH_SCHEMAS = ("raw", "calendar", "reference", "staging", "intermediate", "marts")
LINT_FILES = (
    "tenants.csv",
    "warehouses.csv",
    "calendar_exceptions.csv",
    "carrier_services.csv",
    "sla_policies.csv",
    "reason_codes.csv",
)


@dataclass
class Scenario:
    name: str
    tenant_id: str
    as_of: str
    events: list[dict[str, Any]]
    expected: dict[str, str]
    warehouse_id: str | None = None
    carrier: str | None = None
    service_level: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        return cls(
            name=str(data.get("name") or "unnamed"),
            tenant_id=str(data["tenant_id"]),
            as_of=str(data["as_of"]),
            events=list(data["events"]),
            expected={str(k): str(v) for k, v in dict(data["expected"]).items()},
            warehouse_id=data.get("warehouse_id"),
            carrier=data.get("carrier"),
            service_level=data.get("service_level"),
        )


@dataclass
class ScenarioResult:
    name: str
    order_id: str
    verdict: str  # agrees | disagrees | invalid | error
    expected: dict[str, str]
    actual: dict[str, str | None] = field(default_factory=dict)
    message: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _source(event_type: str) -> str:
    if event_type in ORDER_EVENTS:
        return "oms"
    return "carrier" if event_type in CARRIER_EVENTS else "wms"


def scenario_rows(scenario: Scenario, order_id: str, reference: Reference) -> list[tuple]:
    """The raw.order_events rows of a scenario, through the same validation as ingestion (raises Rejected)."""
    rows = []
    for n, event in enumerate(scenario.events, start=1):
        record = {
            "event_id": f"{order_id}-{n}",
            "tenant_id": scenario.tenant_id,
            "source": _source(event["event_type"]),
            "event_type": event["event_type"],
            "order_id": order_id,
            "occurred_at": event["occurred_at"],
            "warehouse_id": scenario.warehouse_id,
            "carrier": scenario.carrier,
            "service_level": scenario.service_level,
        }
        record = {k: v for k, v in record.items() if v is not None}
        parsed = parse_record(record, reference)
        rows.append(to_row(parsed, json.dumps(record), "lint-scenario", n))
    return rows


def run_scenarios(
    engine: sa.Engine,
    info: ConnectionInfo,
    scenarios: list[Scenario],
    *,
    model: str = "fct_sla_evaluations",
    reference: Reference | None = None,
    keep_schemas: bool = False,
    run_dbt_fn=None,
) -> list[ScenarioResult]:
    """Execute scenarios through the SLA engine (dbt) in scratch schemas; see the module docstring."""
    from e2a_dagster.lib.core.dbt import run_dbt
    from e2a_dagster.lib.ingestion.events import COLUMNS

    run_dbt_fn = run_dbt_fn or run_dbt
    reference = reference or Reference.load()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"scn_{run_id}"
    results: list[ScenarioResult] = []
    pending: dict[str, list[tuple[Scenario, ScenarioResult]]] = {}
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {prefix}_raw"))
        conn.execute(sa.text(f"create table {prefix}_raw.order_events (like raw.order_events including all)"))
        conn.execute(sa.text(f"create schema {prefix}_calendar"))
        conn.execute(
            sa.text(
                f"create table {prefix}_calendar.warehouse_calendar (like reference.warehouse_calendar including all)"
            )
        )
    try:
        _write_scenario_calendar(engine, f"{prefix}_calendar.warehouse_calendar", scenarios)
        for n, scenario in enumerate(scenarios, start=1):
            order_id = f"SCN-{run_id}-{n}"
            result = ScenarioResult(scenario.name, order_id, "agrees", scenario.expected)
            results.append(result)
            try:
                parse_instant(scenario.as_of, what="as_of")  # the one reading of an instant (lib/core/clock.py)
                rows = scenario_rows(scenario, order_id, reference)
            except (Rejected, KeyError, ValueError) as exc:
                result.verdict, result.message = "invalid", f"scenario rejected: {exc}"
                continue
            if rows:  # a scenario of no events is an order that never started: nothing to insert
                with engine.begin() as conn:
                    conn.exec_driver_sql(
                        f"insert into {prefix}_raw.order_events ({', '.join(COLUMNS)}) "
                        f"values ({', '.join(['%s'] * len(COLUMNS))})",
                        rows,
                    )
            pending.setdefault(scenario.as_of, []).append((scenario, result))
        for as_of, batch in pending.items():
            variables = {
                "as_of": as_of,
                "e2a_schema_prefix": prefix,
                "e2a_raw_schema": f"{prefix}_raw",
                "e2a_calendar_schema": f"{prefix}_calendar",
            }
            # Data tests are left out: the scratch data is a handful of scenario orders, and what is asked
            # is the
            # engine's verdict on them, not the quality checks of a real load.
            proc = run_dbt_fn(
                [
                    "build",
                    "--select",
                    f"+{model}",
                    "--exclude",
                    "resource_type:test",
                    "resource_type:unit_test",
                    "--vars",
                    json.dumps(variables),
                    "--target-path",
                    str(SCENARIO_TARGET),
                    "--quiet",
                ],
                info,
                check=False,
            )
            if proc.returncode != 0:
                tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
                for _, result in batch:
                    result.verdict, result.message = "error", f"dbt build failed: {tail}"[:500]
                continue
            if not any(scenario.expected for scenario, _ in batch):
                continue  # nothing to compare (a build-only run)
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text(
                        f"select order_id, stage, status from {prefix}_marts.{model} "
                        "where order_id = any(cast(:ids as text[]))"
                    ),
                    {"ids": [r.order_id for _, r in batch]},
                ).all()
            actual: dict[str, dict[str, str]] = {}
            for order_id, stage, status in found:
                actual.setdefault(order_id, {})[stage] = status
            for scenario, result in batch:
                got = actual.get(result.order_id, {})
                result.actual = {stage: got.get(stage) for stage in scenario.expected}
                if result.actual != scenario.expected:
                    result.verdict = "disagrees"
            # Earlier batches' orders stay in the scratch raw table; each batch reads only its own order ids.
    finally:
        if not keep_schemas:
            with engine.begin() as conn:
                for name in SCRATCH_SCHEMAS:
                    conn.execute(sa.text(f"drop schema if exists {prefix}_{name} cascade"))
    return results


def _write_scenario_calendar(engine: sa.Engine, table: str, scenarios: Sequence[Scenario]) -> None:
    """The business calendar the scenarios need (their dates ± a margin), from the project's seeds, in the scratch
    schema: scenarios never depend on, nor touch, the window of the real ``reference.warehouse_calendar``."""
    from e2a_dagster.lib.sla.calendar import calendar_from_seeds, write_calendar

    dates = []
    for scenario in scenarios:
        for text in [scenario.as_of, *(e.get("occurred_at", "") for e in scenario.events)]:
            try:
                dates.append(datetime.fromisoformat(text).date())
            except (TypeError, ValueError):
                continue
    if not dates:
        return
    first, last = min(dates) - timedelta(days=31), max(dates) + timedelta(days=31)
    write_calendar(engine, calendar_from_seeds(reference_dir(), first, last), table=table)


@dataclass
class AIReview:
    suggestions: list[dict[str, Any]]
    scenarios: list[Scenario]
    status: str  # ok | invalid_json | llm_<kind>
    tokens: int | None = None


def ai_review(
    config: LLMConfig,
    findings: list[Finding],
    seeds_dir: Path | None = None,
    *,
    max_suggestions: int = 10,
    max_scenarios: int = 5,
    sleep=None,
) -> AIReview:
    """Ask the LLM for suggestions and scenarios. Its answer is checked for shape; scenarios are only trusted
    after ``run_scenarios`` executed them."""
    prompt = Prompt.load("policy_lint")
    seeds_dir = seeds_dir or reference_dir()
    files = {name: (seeds_dir / name).read_text(encoding="utf-8") for name in LINT_FILES if (seeds_dir / name).exists()}
    system, user = prompt.render(
        findings=[f.as_dict() for f in findings],
        files=files,
        max_suggestions=max_suggestions,
        max_scenarios=max_scenarios,
    )
    client = LLMClient(config, sleep=sleep) if sleep else LLMClient(config)
    try:
        completion = client.complete(system, user, max_tokens=prompt.max_tokens)
    except LLMError as exc:
        return AIReview([], [], f"llm_{exc.kind}")
    finally:
        client.close()
    try:
        data = json.loads(completion.text)
        suggestions = [
            {"file": str(s["file"]), "line": int(s.get("line") or 0), "message": str(s["message"])[:500]}
            for s in data.get("suggestions", [])[:max_suggestions]
        ]
        scenarios = [Scenario.from_dict(s) for s in data.get("scenarios", [])[:max_scenarios]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return AIReview([], [], "invalid_json", completion.tokens)
    return AIReview(suggestions, scenarios, "ok", completion.tokens)
