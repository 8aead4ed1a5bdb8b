"""Exception narratives end to end against the real PostgreSQL and the real ``openai`` client talking to a
local fake chat-completions server. The SLA marts are hand-written fixtures in a per-test scratch schema."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from e2a_dagster.lib.core.settings import SEEDS_DIR
from e2a_dagster.lib.explanations.facts import load_exception_facts
from e2a_dagster.lib.explanations.llm import LLMConfig
from e2a_dagster.lib.explanations.prompts import Prompt
from e2a_dagster.lib.explanations.writer import run_narratives
from e2a_dagster.lib.sla.calendar import calendar_from_seeds, write_calendar
from tests.explain_fixtures import add_exception, create_marts, drop_schema
from tests.fake_llm import FakeLLM, good_answer
from tests.invoice_helpers import write_warehouse_calendar


class Clock:
    def __init__(self, now: str):
        self.now = datetime.fromisoformat(now)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def marts(engine, uid):
    schema = f"x_{uid}"
    create_marts(engine, schema)
    write_warehouse_calendar(engine)  # the narratives read their calendar facts from reference.warehouse_calendar
    yield schema
    drop_schema(engine, schema)


def pick_late(engine, schema, uid, n="1", severity="major", **kw):
    """Pick of order A<uid>-<n>: paid Tue 2026-03-03 09:05 EST, 120 business minutes → due 11:05, done 12:40:
    95 minutes late."""
    params = dict(
        exception_id=f"e{uid}-{n}",
        order_id=f"A{uid}-{n}",
        stage="pick",
        status="late",
        severity=severity,
        started_at="2026-03-03T09:05:00-05:00",
        due_at="2026-03-03T11:05:00-05:00",
        ended_at="2026-03-03T12:40:00-05:00",
        minutes_late=95,
    )
    params.update(kw)
    add_exception(engine, schema, **params)
    return params


def config(fake: FakeLLM, uid: str, **kw) -> LLMConfig:
    base = dict(
        model=f"fake-{uid}",
        base_url=fake.url,
        api_key="test",
        max_retries=2,
        backoff_base_s=0.5,
        concurrency=1,
        timeout_s=5,
        breaker_threshold=3,
        breaker_cooldown_s=600,
    )
    base.update(kw)
    return LLMConfig(**base)


def rows(engine, uid) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select * from actions.exception_narratives where exception_id like :p "
                    "order by exception_id, created_at"
                ),
                {"p": f"e{uid}-%"},
            ).mappings()
        ]


def run(engine, schema, cfg, clock=None, sleeps=None, **kw):
    return run_narratives(
        engine,
        cfg,
        schema=schema,
        clock=clock or Clock("2026-03-03T18:00:00-05:00"),
        sleep=(sleeps.append if sleeps is not None else (lambda s: None)),
        **kw,
    )


def test_without_llm_configuration_template_notes_are_written_once(engine, marts, uid):
    pick_late(engine, marts, uid, reason_code="PICK_BACKLOG")
    summary = run(engine, marts, None)
    assert (summary.written, summary.template, summary.llm) == (1, 1, 0)
    [row] = rows(engine, uid)
    assert (row["generator"], row["status"], row["model"], row["label"]) == (
        "template",
        "template",
        None,
        "PICK_BACKLOG",
    )
    assert row["ops_note"].startswith(
        f"Order A{uid}-1: picking finished 95 minutes late (major) at Newark NJ "
        "fulfillment center (NJ1). Due Tue 2026-03-03 11:05, done Tue 2026-03-03 12:40"
    )
    assert "Rule: 120 business minutes (policy default_pick v1)." in row["ops_note"]
    assert row["client_note"] == (
        f"We are sorry: preparing order A{uid}-1 took longer than we promised. It is "
        "moving on to shipping now, and we are keeping a close eye on it."
    )
    assert row["confidence"] is None and row["tokens"] is None
    again = run(engine, marts, None)
    assert (again.cached, again.written) == (1, 0)


def test_good_output_is_stored_with_tokens_and_cost(engine, marts, uid):
    pick_late(engine, marts, uid)
    with FakeLLM(default=good_answer) as fake:
        cfg = config(fake, uid, price_input_per_1m=Decimal("1.00"), price_output_per_1m=Decimal("2.00"))
        summary = run(engine, marts, cfg)
    [row] = rows(engine, uid)
    assert (row["generator"], row["status"], row["label"]) == ("llm", "ok", "UNKNOWN")
    assert row["ops_note"] == (
        f"Order A{uid}-1: the pick step was due Tue 2026-03-03 11:05 and is late. Check the "
        "events and follow up with the team."
    )
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens"]) == (120, 80, 200)
    assert row["cost_estimate"] == Decimal("0.000280")  # 120 × 1.00 / 1e6 + 80 × 2.00 / 1e6
    assert row["confidence"] == Decimal("0.700") and row["prompt_version"] == "exception_narrative@1"
    assert (summary.tokens, summary.cost_estimate) == (200, Decimal("0.000280"))
    request = fake.requests[0]
    assert request["model"] == f"fake-{uid}" and request["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("answer", "status", "detail_has"),
    [
        (lambda r: ("reply", "Sure! Here is the JSON: {order_id: ..."), "fallback:invalid_json", "not JSON"),
        (lambda r: good_answer(r, label="LOST_IN_SPACE"), "fallback:schema_violation", "LOST_IN_SPACE"),
        (lambda r: good_answer(r, confidence=1.5), "fallback:schema_violation", "confidence"),
        (
            lambda r: good_answer(r, ops_note="Picking finished 37 minutes late; the wave was short of pickers."),
            "fallback:ungrounded_number",
            "37",
        ),
        (lambda r: good_answer(r, order_id="A0000-9"), "fallback:wrong_order_id", "A0000-9"),
        (
            lambda r: good_answer(r, client_note="Sorry, the SLA was breached; we will issue a credit for it."),
            "fallback:internal_term",
            "sla",
        ),
    ],
    ids=[
        "malformed_json",
        "unknown_label",
        "confidence_out_of_range",
        "ungrounded_number",
        "wrong_order_id",
        "internal_term",
    ],
)
def test_untrustworthy_output_falls_back_to_the_template(engine, marts, uid, answer, status, detail_has):
    pick_late(engine, marts, uid)
    with FakeLLM(default=answer) as fake:
        summary = run(engine, marts, config(fake, uid))
    [row] = rows(engine, uid)
    assert (row["generator"], row["status"]) == ("template", status)
    assert detail_has in row["status_detail"]
    assert row["ops_note"].startswith(f"Order A{uid}-1: picking finished 95 minutes late")
    assert row["tokens"] == 200  # the call was paid for even though its answer was thrown away
    assert summary.statuses == {status: 1}
    # A rejected answer is final for that input: the next run does not pay for it again.
    with FakeLLM(default=good_answer) as fake:
        again = run(engine, marts, config(fake, uid))
        assert (again.cached, fake.requests) == (1, [])


def test_429_is_retried_with_backoff_then_succeeds(engine, marts, uid):
    pick_late(engine, marts, uid)
    sleeps: list[float] = []
    with FakeLLM(default=good_answer) as fake:
        fake.script = [("status", 429, {"retry-after": "2"}), ("status", 503, {})]
        run(engine, marts, config(fake, uid), sleeps=sleeps)
        assert len(fake.requests) == 3
    assert sleeps == [2.0, 1.0]  # Retry-After honoured (2 s > 0.5 s), then 0.5 × 2
    [row] = rows(engine, uid)
    assert (row["generator"], row["status"]) == ("llm", "ok")


def test_persistent_500s_open_the_breaker_which_half_opens_after_the_cool_down(engine, marts, uid):
    for n in "1234":
        pick_late(engine, marts, uid, n=n)
    clock = Clock("2026-03-03T18:00:00-05:00")
    with FakeLLM() as fake:  # every request: HTTP 500
        cfg = config(fake, uid, max_retries=1, breaker_threshold=3, breaker_cooldown_s=600)
        first = run(engine, marts, cfg, clock)
        # 3 exceptions × 2 attempts, then the breaker is open and the 4th is not even tried.
        assert len(fake.requests) == 6
        assert first.statuses == {"fallback:llm_server_error": 3, "fallback:breaker_open": 1}

        clock.now += timedelta(seconds=599)  # still cooling down: nothing goes out
        second = run(engine, marts, cfg, clock)
        assert len(fake.requests) == 6 and second.statuses == {"fallback:breaker_open": 4}

        clock.now += timedelta(seconds=1)  # half-open: one probe; it fails, the breaker opens again
        third = run(engine, marts, cfg, clock)
        assert len(fake.requests) == 8
        assert third.statuses == {"fallback:llm_server_error": 1, "fallback:breaker_open": 3}

        fake.default = good_answer  # the endpoint recovers; after another cool-down the probe closes it
        clock.now += timedelta(seconds=600)
        fourth = run(engine, marts, cfg, clock)
        assert len(fake.requests) == 12 and fourth.statuses == {"ok": 4}
    with engine.connect() as conn:
        state = conn.execute(
            sa.text("select state, consecutive_failures from ops.llm_breaker where breaker_key = :k"),
            {"k": cfg.breaker_key},
        ).one()
    assert tuple(state) == ("closed", 0)
    assert [r["status"] for r in rows(engine, uid)] == ["ok"] * 4  # transient fallbacks were replaced


def test_timeout_falls_back_and_is_retried_next_run(engine, marts, uid):
    pick_late(engine, marts, uid)
    with FakeLLM(default=good_answer) as fake:
        fake.script = [("hang",)]
        cfg = config(fake, uid, timeout_s=0.3)
        first = run(engine, marts, cfg)
        assert first.statuses == {"fallback:llm_timeout": 1} and len(fake.requests) == 1  # no retry on timeout
        [row] = rows(engine, uid)
        assert row["generator"] == "template" and "timeout" in row["status_detail"]
        second = run(engine, marts, cfg)
    assert second.statuses == {"ok": 1}
    assert [r["status"] for r in rows(engine, uid)] == ["ok"]


def test_budget_goes_to_the_most_severe_first_and_resets_at_tenant_local_midnight(engine, marts, uid):
    pick_late(engine, marts, uid, n="1", severity="minor")
    pick_late(engine, marts, uid, n="2", severity="major")
    pick_late(engine, marts, uid, n="3", severity="critical")
    # 23:30 in New York is already the next day in UTC: the budget day must be New York's.
    clock = Clock("2030-05-05T23:30:00-04:00")
    with engine.begin() as conn:  # 2 500 tokens left today; each call reports 2 500 tokens used
        conn.execute(
            sa.text(
                "insert into ops.llm_budget (tenant_id, budget_date, tokens_limit, tokens_used) "
                "values ('acme', '2030-05-05', 50000, 47500)"
            )
        )
    with FakeLLM(default=lambda r: (*good_answer(r), (2000, 500))) as fake:
        cfg = config(fake, uid, daily_tokens=50000)
        first = run(engine, marts, cfg, clock)
        assert len(fake.requests) == 1
        by_id = {r["exception_id"]: r["status"] for r in rows(engine, uid)}
        assert by_id == {
            f"e{uid}-3": "ok",
            f"e{uid}-2": "fallback:budget_exhausted",
            f"e{uid}-1": "fallback:budget_exhausted",
        }
        assert first.tokens == 2500
        clock.now = datetime.fromisoformat("2030-05-06T00:30:00-04:00")  # New York midnight has passed
        second = run(engine, marts, cfg, clock)
    assert second.statuses == {"ok": 2}
    with engine.connect() as conn:
        budget = dict(
            conn.execute(
                sa.text(
                    "select budget_date::text, tokens_used from ops.llm_budget where tenant_id = 'acme' "
                    "and budget_date in ('2030-05-05', '2030-05-06')"
                )
            ).all()
        )
    assert budget == {"2030-05-05": 50000, "2030-05-06": 5000}


def test_unchanged_input_is_a_cache_hit_and_a_new_prompt_version_regenerates(engine, marts, uid, tmp_path):
    pick_late(engine, marts, uid)
    with FakeLLM(default=good_answer) as fake:
        cfg = config(fake, uid)
        run(engine, marts, cfg)
        cached = run(engine, marts, cfg)
        assert (cached.cached, cached.written, len(fake.requests)) == (1, 0, 1)

        source = Prompt.load("exception_narrative")
        (tmp_path / "exception_narrative.j2").write_text(
            "---\nversion: 2\nmax_tokens: 600\n---\n" + source.source, encoding="utf-8"
        )
        v2 = Prompt.load("exception_narrative", tmp_path)
        regenerated = run(engine, marts, cfg, prompt=v2)
        assert (regenerated.written, len(fake.requests)) == (1, 2)
    assert [r["prompt_version"] for r in rows(engine, uid)] == [
        "exception_narrative@1",
        "exception_narrative@2",
    ]


def test_a_changed_exception_is_regenerated(engine, marts, uid):
    pick_late(engine, marts, uid)
    run(engine, marts, None)
    with engine.begin() as conn:
        conn.execute(sa.text(f"update {marts}.fct_sla_exceptions set severity = 'critical'"))
    summary = run(engine, marts, None)
    assert summary.written == 1
    assert [r["severity"] for r in rows(engine, uid)] == ["major", "critical"]
    facts = rows(engine, uid)[1]["facts"]
    assert facts["severity"] == "critical" and json.dumps(facts).count("payload") == 0


def test_calendar_facts_come_from_the_stored_warehouse_calendar(engine, marts, uid):
    """A closure, a holiday and a non-working weekday that only the stored calendar has (the seeds and the
    holidays library know none of them) are what the narrative says the clock crossed."""
    # Pick of order A<uid>-1: Mon 2026-03-02 09:05 → done Wed 2026-03-04 12:40, at NJ1; a plain working week.
    pick_late(
        engine,
        marts,
        uid,
        started_at="2026-03-02T09:05:00-05:00",
        due_at="2026-03-04T11:05:00-05:00",
        ended_at="2026-03-04T12:40:00-05:00",
    )
    calendar = f"x_{uid}_reference"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {calendar}"))
        conn.execute(
            sa.text(f"create table {calendar}.warehouse_calendar (like reference.warehouse_calendar including all)")
        )
    try:
        table = f"{calendar}.warehouse_calendar"
        write_calendar(engine, calendar_from_seeds(SEEDS_DIR, date(2026, 2, 1), date(2026, 3, 31)), table=table)
        with engine.connect() as conn:  # the seeds' calendar: the clock crossed nothing
            [item] = load_exception_facts(conn, marts, reference_schema=calendar)
        assert item.facts["calendar"] == {
            "weekend_crossed": False,
            "holidays": [],
            "closures": [],
            "started_after_cutoff": False,
        }
        closed = "is_business_day = false, open_at = null, close_at = null, cutoff_at = null"
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"update {table} set is_working_weekday = false where warehouse_id = 'NJ1' "
                    "and local_date = '2026-03-02'"
                )
            )
            conn.execute(
                sa.text(
                    f"update {table} set {closed}, holiday_name = 'Burst pipe', exception_reason = 'Burst pipe' "
                    "where warehouse_id = 'NJ1' and local_date = '2026-03-03'"
                )
            )
            conn.execute(
                sa.text(
                    f"update {table} set {closed}, is_public_holiday = true, holiday_name = 'Founders Day' "
                    "where warehouse_id = 'NJ1' and local_date = '2026-03-04'"
                )
            )
        with engine.connect() as conn:
            [item] = load_exception_facts(conn, marts, reference_schema=calendar)
        assert item.facts["calendar"] == {
            "weekend_crossed": True,
            "holidays": [{"date": "2026-03-04", "name": "Founders Day"}],
            "closures": [{"date": "2026-03-03", "reason": "Burst pipe"}],
            "started_after_cutoff": False,
        }
        # ... and the whole flow writes them into the note, reading the calendar it is given.
        run(engine, marts, None, reference_schema=calendar)
        [row] = rows(engine, uid)
        assert (
            "Calendar: the clock crossed a weekend; Founders Day (2026-03-04) was a holiday; "
            "the warehouse was closed on 2026-03-03 (Burst pipe)."
        ) in row["ops_note"]
    finally:
        drop_schema(engine, calendar)
