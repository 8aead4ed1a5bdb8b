"""Writing narratives: generation only for new or changed inputs (``input_hash`` = facts + prompt version +
model), the LLM behind the tenant's token budget and the circuit breaker, and any failure → the template note with
the reason in ``status`` (``fallback:<code>``) and ``status_detail``. Nothing here fails the pipeline.
``run_narratives`` is the whole flow the ``actions/exception_narratives`` asset runs."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from e2a_dagster.lib.core.clock import now as clock_now
from e2a_dagster.lib.explanations.facts import ExceptionFacts, load_exception_facts
from e2a_dagster.lib.explanations.grounding import NarrativeRejected, check_grounding, parse_output
from e2a_dagster.lib.explanations.llm import LLMClient, LLMConfig, LLMError
from e2a_dagster.lib.explanations.llm_guard import CircuitBreaker, Clock, TokenBudget, estimate_tokens
from e2a_dagster.lib.explanations.prompts import Prompt
from e2a_dagster.lib.explanations.reference_data import NarrativeReference
from e2a_dagster.lib.explanations.sql import plain_schema
from e2a_dagster.lib.explanations.templates import LIMITS, TEMPLATE_VERSION, Draft, template_narrative

log = logging.getLogger(__name__)

# Fallbacks caused by the call, not by the input: the next run tries the LLM again for the same input.
TRANSIENT = ("fallback:budget_exhausted", "fallback:breaker_open", "fallback:llm_")


def input_hash(facts: dict[str, Any], prompt_version: str, model: str | None) -> str:
    blob = json.dumps(
        {"facts": facts, "prompt": prompt_version, "template": TEMPLATE_VERSION, "model": model},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class NarrativeRow:
    item: ExceptionFacts
    input_hash: str
    draft: Draft
    generator: str
    status: str
    status_detail: str | None = None
    model: str | None = None
    prompt_version: str = TEMPLATE_VERSION
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_estimate: Decimal | None = None

    @property
    def tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    def params(self) -> dict[str, Any]:
        i, d = self.item, self.draft
        return {
            "exception_id": i.exception_id,
            "input_hash": self.input_hash,
            "tenant_id": i.tenant_id,
            "order_id": i.order_id,
            "stage": i.stage,
            "exception_status": i.status,
            "severity": i.severity,
            "label": d.label,
            "ops_note": d.ops_note,
            "client_note": d.client_note,
            "confidence": d.confidence,
            "generator": self.generator,
            "status": self.status,
            "status_detail": self.status_detail,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_estimate": self.cost_estimate,
            "facts": json.dumps(i.facts, sort_keys=True),
        }


@dataclass
class NarrativeSummary:
    exceptions: int = 0
    cached: int = 0
    written: int = 0
    llm: int = 0
    template: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    cost_estimate: Decimal | None = None
    rows: list[NarrativeRow] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)  # exception_id -> input_hash of its facts now
    retired: int = 0  # narratives no longer current (exception gone, or facts changed)

    def add(self, row: NarrativeRow) -> None:
        self.rows.append(row)
        self.written += 1
        if row.generator == "llm":
            self.llm += 1
        else:
            self.template += 1
        self.statuses[row.status] = self.statuses.get(row.status, 0) + 1
        self.tokens += row.tokens or 0
        if row.cost_estimate is not None:
            self.cost_estimate = (self.cost_estimate or Decimal(0)) + row.cost_estimate


_UPSERT = """
    insert into {actions}.exception_narratives
      (exception_id, input_hash, tenant_id, order_id, stage, exception_status, severity, label, ops_note,
       client_note, confidence, generator, status, status_detail, model, prompt_version, tokens,
       prompt_tokens,
       completion_tokens, cost_estimate, facts)
    values
      (:exception_id, :input_hash, :tenant_id, :order_id, :stage, :exception_status, :severity, :label,
       :ops_note, :client_note, :confidence, :generator, :status, :status_detail, :model, :prompt_version,
       :tokens, :prompt_tokens, :completion_tokens, :cost_estimate, cast(:facts as jsonb))
    on conflict (exception_id, input_hash) do update set
       label = excluded.label, ops_note = excluded.ops_note, client_note = excluded.client_note,
       confidence = excluded.confidence, generator = excluded.generator, status = excluded.status,
       status_detail = excluded.status_detail, model = excluded.model, tokens = excluded.tokens,
       prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
       cost_estimate = excluded.cost_estimate, created_at = now()
    """


def _is_transient(status: str) -> bool:
    return any(status.startswith(prefix) for prefix in TRANSIENT)


class NarrativeWriter:
    """Writes narratives for a batch of exceptions. ``llm`` None = templates only (``status = template``)."""

    def __init__(
        self,
        engine: sa.Engine,
        ref: NarrativeReference,
        prompt: Prompt,
        *,
        llm: LLMClient | None = None,
        budget: TokenBudget | None = None,
        breaker: CircuitBreaker | None = None,
        log_fn: Callable[[str], None] | None = None,
        actions_schema: str = "actions",
    ):
        self.engine = engine
        self.actions = plain_schema(actions_schema)
        self.ref = ref
        self.prompt = prompt
        self.llm = llm
        self.budget = budget
        self.breaker = breaker
        self.log = log_fn or log.info

    @property
    def model(self) -> str | None:
        return self.llm.config.model if self.llm else None

    def _hash(self, item: ExceptionFacts) -> str:
        return input_hash(item.facts, self.prompt.version if self.llm else TEMPLATE_VERSION, self.model)

    def _existing(self, items: list[ExceptionFacts]) -> dict[tuple[str, str], str]:
        if not items:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"select exception_id, input_hash, status from {self.actions}.exception_narratives "
                    "where exception_id = any(cast(:ids as text[]))"
                ),
                {"ids": [i.exception_id for i in items]},
            ).all()
        return {(r[0], r[1]): r[2] for r in rows}

    def _fallback(self, item: ExceptionFacts, digest: str, code: str, detail: str | None, **extra) -> NarrativeRow:
        return NarrativeRow(
            item,
            digest,
            template_narrative(item, self.ref),
            "template",
            f"fallback:{code}",
            detail,
            model=self.model,
            prompt_version=self.prompt.version,
            **extra,
        )

    def _generate(self, item: ExceptionFacts, digest: str, system: str, user: str, reserved: int) -> NarrativeRow:
        assert self.llm is not None
        if self.breaker is not None and not self.breaker.allow():
            if self.budget:
                self.budget.settle(item.tenant_id, reserved, 0)
            return self._fallback(item, digest, "breaker_open", "circuit breaker open: LLM calls paused")
        try:
            completion = self.llm.complete(system, user, max_tokens=self.prompt.max_tokens)
        except LLMError as exc:
            if self.breaker is not None:
                self.breaker.record_failure(str(exc))
            if self.budget:
                self.budget.settle(item.tenant_id, reserved, 0)
            return self._fallback(item, digest, f"llm_{exc.kind}", f"{exc} (after {exc.attempts} attempt(s))")
        if self.breaker is not None:
            self.breaker.record_success()
        if self.budget:
            self.budget.settle(item.tenant_id, reserved, completion.tokens)
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_estimate": self.llm.config.cost(completion.prompt_tokens, completion.completion_tokens),
        }
        labels = self.ref.labels_for(item.stage)
        try:
            out = parse_output(completion.text, labels)
            check_grounding(out, item, self.ref)
        except NarrativeRejected as exc:
            row = self._fallback(item, digest, exc.code, exc.detail, **usage)
            row.model = completion.model
            return row
        draft = Draft(
            label=out.label,
            ops_note=out.ops_note,
            client_note=out.client_note,
            confidence=round(out.confidence, 3),
        )
        return NarrativeRow(
            item,
            digest,
            draft,
            "llm",
            "ok",
            None,
            model=completion.model,
            prompt_version=self.prompt.version,
            **usage,
        )

    def run(self, items: list[ExceptionFacts]) -> NarrativeSummary:
        summary = NarrativeSummary(exceptions=len(items))
        existing = self._existing(items)
        todo: list[tuple[ExceptionFacts, str]] = []
        for item in sorted(items, key=lambda i: i.priority):
            digest = self._hash(item)
            summary.current[item.exception_id] = digest
            status = existing.get((item.exception_id, digest))
            if status is not None and not _is_transient(status):
                summary.cached += 1
                continue
            todo.append((item, digest))
        if self.llm is None:
            for item, digest in todo:
                self._write(
                    NarrativeRow(
                        item,
                        digest,
                        template_narrative(item, self.ref),
                        "template",
                        "template",
                        "no LLM configured (E2A_LLM_MODEL and E2A_LLM_BASE_URL/API_KEY unset)",
                    ),
                    summary,
                )
            return summary
        # Budget is reserved here, in priority order, so critical and major exceptions get it first; the calls
        # then run on a bounded pool (the client bounds concurrency too).
        with ThreadPoolExecutor(max_workers=max(1, self.llm.config.concurrency)) as pool:
            futures = []
            for item, digest in todo:
                system, user = self.prompt.render(
                    facts=item.facts, allowed_labels=self.ref.labels_for(item.stage), limits=LIMITS
                )
                reserved = estimate_tokens(system + user) + self.prompt.max_tokens
                if self.budget is not None and not self.budget.reserve(item.tenant_id, reserved):
                    self._write(
                        self._fallback(
                            item,
                            digest,
                            "budget_exhausted",
                            f"daily token budget of tenant {item.tenant_id} used up",
                        ),
                        summary,
                    )
                    continue
                futures.append((pool.submit(self._generate, item, digest, system, user, reserved), item, digest))
            for future, item, digest in futures:
                try:
                    row = future.result()
                except Exception as exc:  # never fail the pipeline over one narrative
                    log.exception("narrative generation failed")
                    row = self._fallback(item, digest, "internal_error", repr(exc)[:300])
                self._write(row, summary)
        return summary

    def _write(self, row: NarrativeRow, summary: NarrativeSummary) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(_UPSERT.format(actions=self.actions)), row.params())
        summary.add(row)


def mark_current(
    engine: sa.Engine, current: dict[str, str], *, retire_absent: bool, actions_schema: str = "actions"
) -> int:
    """Make the narrative of every exception's current facts (``current``: exception_id -> input_hash) the
    current one (``actions.exception_narratives_current``); the other versions of those exceptions stop being
    current, and with ``retire_absent`` so do the narratives of exceptions not in ``current`` (gone from the
    marts). Nothing is deleted: ``retired_at`` says when a narrative stopped being current. Returns how many
    did."""
    actions = plain_schema(actions_schema)
    ids, hashes = list(current), [current[i] for i in current]
    absent = "or not (n.exception_id = any(cast(:ids as text[])))" if retire_absent else ""
    with engine.begin() as conn:
        conn.execute(sa.text(f"lock table {actions}.exception_narratives in share row exclusive mode"))
        retired = conn.execute(
            sa.text(
                f"""
                update {actions}.exception_narratives n
                   set is_current = false, retired_at = now()
                 where n.is_current
                   and ((n.exception_id, n.input_hash) not in (
                            select * from unnest(cast(:ids as text[]), cast(:hashes as text[])))
                        and n.exception_id = any(cast(:ids as text[]))
                        {absent})
                """
            ),
            {"ids": ids, "hashes": hashes},
        ).rowcount
        conn.execute(
            sa.text(
                f"""
                update {actions}.exception_narratives n
                   set is_current = true, retired_at = null
                  from unnest(cast(:ids as text[]), cast(:hashes as text[])) as c(exception_id, input_hash)
                 where n.exception_id = c.exception_id and n.input_hash = c.input_hash and not n.is_current
                """
            ),
            {"ids": ids, "hashes": hashes},
        )
    return retired


def exceptions_table_exists(conn: sa.Connection, schema: str = "marts") -> bool:
    return bool(
        conn.execute(
            sa.text("select to_regclass(:t) is not null"), {"t": f"{plain_schema(schema)}.fct_sla_exceptions"}
        ).scalar_one()
    )


def run_narratives(
    engine: sa.Engine,
    config: LLMConfig | None,
    *,
    schema: str = "marts",
    raw_schema: str = "raw",
    actions_schema: str = "actions",
    reference_schema: str = "reference",
    seeds_dir: Path | None = None,
    prompt: Prompt | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
    log_fn: Callable[[str], None] | None = None,
    retire_absent: bool | None = None,
) -> NarrativeSummary:
    """Narratives for every new or changed exception in ``<schema>.fct_sla_exceptions``, written to
    ``<actions_schema>.exception_narratives``: the whole flow the ``actions/exception_narratives`` asset runs
    (and the tests drive with a fake server and a fake clock; a backtest writes templates into its own schema).
    The calendar facts come from ``<reference_schema>.warehouse_calendar`` (a backtest has its own).

    Afterwards each exception's narrative for its current facts is the current one, and narratives of
    exceptions no longer there stop being current (``retire_absent``; default: when ``schema`` is the live
    ``marts``, whose exceptions the actions table follows, not a scratch schema)."""
    if retire_absent is None:
        retire_absent = schema == "marts"
    clock = clock or clock_now
    ref = NarrativeReference.load(seeds_dir)
    prompt = prompt or Prompt.load("exception_narrative")
    with engine.connect() as conn:
        if not exceptions_table_exists(conn, schema):
            (log_fn or log.info)(f"{schema}.fct_sla_exceptions does not exist yet: no narratives to write")
            return NarrativeSummary()
        items = load_exception_facts(
            conn, schema, raw_schema=raw_schema, reference_schema=reference_schema, reference=ref
        )
    summary = _write_narratives(engine, items, config, ref, prompt, clock, sleep, log_fn, actions_schema)
    summary.retired = mark_current(engine, summary.current, retire_absent=retire_absent, actions_schema=actions_schema)
    return summary


def _write_narratives(
    engine: sa.Engine,
    items: list[ExceptionFacts],
    config: LLMConfig | None,
    ref: NarrativeReference,
    prompt: Prompt,
    clock: Clock,
    sleep: Callable[[float], None] | None,
    log_fn: Callable[[str], None] | None,
    actions_schema: str = "actions",
) -> NarrativeSummary:
    client = budget = breaker = None
    if config is not None:
        client = LLMClient(config, sleep=sleep) if sleep else LLMClient(config)
        zones = {t: r["time_zone"] for t, r in ref.tenants.items()}
        budget = TokenBudget(engine, config.daily_tokens, zones, clock)
        breaker = CircuitBreaker(
            engine,
            config.breaker_key,
            threshold=config.breaker_threshold,
            cooldown_s=config.breaker_cooldown_s,
            clock=clock,
        )
    try:
        writer = NarrativeWriter(
            engine,
            ref,
            prompt,
            llm=client,
            budget=budget,
            breaker=breaker,
            log_fn=log_fn,
            actions_schema=actions_schema,
        )
        return writer.run(items)
    finally:
        if client is not None:
            client.close()
