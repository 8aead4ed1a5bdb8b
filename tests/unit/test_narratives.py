"""Narrative building blocks without a database: templates, output parsing, grounding, LLM configuration."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from e2a_dagster.lib.core.settings import reference_dir
from e2a_dagster.lib.explanations.calendar_facts import calendar_facts, index_days
from e2a_dagster.lib.explanations.facts import build_facts
from e2a_dagster.lib.explanations.grounding import NarrativeOutput, NarrativeRejected, check_grounding, parse_output
from e2a_dagster.lib.explanations.llm import LLMClient, LLMConfig, config_from_env
from e2a_dagster.lib.explanations.reference_data import NarrativeReference
from e2a_dagster.lib.explanations.templates import template_narrative
from e2a_dagster.lib.sla.calendar import calendar_days, calendar_from_seeds

NY = ZoneInfo("America/New_York")
REF = NarrativeReference.load()
# The calendar rows the reference/warehouse_calendar asset would store for February 2026 (no database here).
CALENDAR = index_days(calendar_from_seeds(reference_dir(), date(2026, 2, 1), date(2026, 2, 28)))
POLICY = {
    "pick": "default_pick",
    "pack": "default_pack",
    "ship": "default_ship",
    "deliver": "default_deliver",
}


def facts(stage="pick", status="late", severity="major", minutes_late=95):
    ended = datetime(2026, 2, 17, 10, 40, tzinfo=NY) if status == "late" else None
    row = dict(
        exception_id="e1",
        tenant_id="acme",
        order_id="A-1001",
        stage=stage,
        status=status,
        severity=severity,
        reason_code=None,
        opened_at=datetime(2026, 2, 17, 9, 5, tzinfo=NY),
        minutes_late=minutes_late if status == "late" else None,
        policy_id=POLICY[stage],
        policy_version=1,
        started_at=datetime(2026, 2, 13, 15, 5, tzinfo=NY),
        due_at=datetime(2026, 2, 17, 9, 5, tzinfo=NY),
        ended_at=ended,
        warehouse_id="NJ1",
        carrier="ups",
        service_level="ground",
    )
    timeline = [dict(event_type="order_paid", occurred_at=datetime(2026, 2, 13, 15, 5, tzinfo=NY), source="oms")]
    return build_facts(row, timeline, REF, CALENDAR)


def test_calendar_facts_name_the_weekend_and_the_holiday_crossed():
    cal = facts().facts["calendar"]
    # Fri 13 Feb 15:05 → Tue 17 Feb 2026: a weekend and Presidents Day (Mon 16 Feb); 15:05 is after the
    # 14:00 cutoff.
    assert cal == {
        "weekend_crossed": True,
        "holidays": [{"date": "2026-02-16", "name": "Presidents Day"}],
        "closures": [],
        "started_after_cutoff": True,
    }


def test_calendar_facts_read_what_the_stored_calendar_says_about_each_day():
    """Holidays, closures and weekends as ``reference.warehouse_calendar`` stores them (here: the rows
    ``lib/sla/calendar.py`` yields for it), including the days a calendar exception opens or closes."""
    warehouse = REF.warehouses["NJ1"]
    closed = {"is_open": "false", "open_time": "", "close_time": ""}
    exceptions = [
        {
            "warehouse_id": "NJ1",
            "local_date": "2026-10-12",
            "is_open": "true",
            "open_time": "08:00",
            "close_time": "18:00",
            "reason": "Open on Columbus Day",
        },
        {"warehouse_id": "NJ1", "local_date": "2026-03-04", **closed, "reason": ""},
        {"warehouse_id": "NJ1", "local_date": "2026-03-05", **closed, "reason": "Stocktake"},
    ]
    stored = index_days(calendar_days([warehouse], exceptions, date(2026, 3, 1), date(2026, 10, 31)))

    def crossed(start, end, stage="pack"):
        return calendar_facts(warehouse, start, end, stored, stage)

    # Fri 3 July (observed) and Sat 4 July 2026 (on a weekend) are both holidays, by their names.
    assert crossed(datetime(2026, 7, 2, 9, tzinfo=NY), datetime(2026, 7, 4, 12, tzinfo=NY)) == {
        "weekend_crossed": True,
        "holidays": [
            {"date": "2026-07-03", "name": "Independence Day (observed)"},
            {"date": "2026-07-04", "name": "Independence Day"},
        ],
        "closures": [],
        "started_after_cutoff": None,
    }
    # Columbus Day, opened by an exception, is not a holiday the clock crossed; the weekend before it is.
    assert crossed(datetime(2026, 10, 9, 9, tzinfo=NY), datetime(2026, 10, 13, 9, tzinfo=NY), "ship") == {
        "weekend_crossed": True,
        "holidays": [],
        "closures": [],
        "started_after_cutoff": False,
    }
    # Closures with and without a reason; a plain working week crosses no weekend.
    assert crossed(datetime(2026, 3, 3, 15, tzinfo=NY), datetime(2026, 3, 6, 9, tzinfo=NY), "pick") == {
        "weekend_crossed": False,
        "holidays": [],
        "closures": [{"date": "2026-03-04", "reason": ""}, {"date": "2026-03-05", "reason": "Stocktake"}],
        "started_after_cutoff": True,
    }
    # A day the stored calendar does not hold says nothing (the calendar asset covers the data's dates).
    assert crossed(datetime(2026, 12, 24, 9, tzinfo=NY), datetime(2026, 12, 28, 9, tzinfo=NY))["holidays"] == []


def test_open_exceptions_keep_growing_minutes_out_of_the_facts():
    assert facts(status="overdue", minutes_late=300).facts["minutes_late"] is None
    assert facts(status="late", minutes_late=95).facts["minutes_late_hours"] == 1.6


@pytest.mark.parametrize(
    ("stage", "status", "severity"),
    [
        (s, st, sev)
        for s, (st, sev) in itertools.product(
            ("pick", "pack", "ship", "deliver"),
            [
                ("late", "minor"),
                ("late", "major"),
                ("late", "critical"),
                ("overdue", "minor"),
                ("overdue", "major"),
                ("overdue", "critical"),
                ("at_risk", None),
            ],
        )
    ],
)
def test_template_reads_well_and_passes_its_own_grounding(stage, status, severity):
    item = facts(stage, status, severity)
    draft = template_narrative(item, REF)
    for note in (draft.ops_note, draft.client_note):
        assert "None" not in note and "  " not in note and "{" not in note and "A-1001" in note
        assert note.endswith(".")
    assert draft.ops_note.startswith("Order A-1001: ")
    if severity:
        assert f"({severity})" in draft.ops_note
    assert draft.client_note.startswith("We are sorry" if status != "at_risk" else "Order A-1001 is still on")
    out = NarrativeOutput(
        order_id="A-1001",
        label=draft.label,
        ops_note=draft.ops_note,
        client_note=draft.client_note,
        confidence=0.5,
    )
    check_grounding(out, item, REF)  # raises if a number, a date or an internal term slipped in


def test_grounding_accepts_facts_numbers_and_rejects_others():
    item = facts()
    ok = NarrativeOutput(
        order_id="A-1001",
        label="UNKNOWN",
        confidence=0.6,
        ops_note="Pick was 95 minutes (1.6 hours) late; due 09:05 on 2026-02-17, done 10:40.",
        client_note="We are sorry: order A-1001 was delayed by the Presidents Day holiday.",
    )
    check_grounding(ok, item, REF)
    for ops_note, bad in (
        ("Pick was 96 minutes late, due 09:05.", "96"),
        ("Done at 10:41 after the wave.", "10:41"),
        ("Due on 2026-02-18 according to the rule.", "2026-02-18"),
    ):
        with pytest.raises(NarrativeRejected) as err:
            check_grounding(ok.model_copy(update={"ops_note": ops_note}), item, REF)
        assert err.value.code == "ungrounded_number" and bad in err.value.detail


def test_output_parsing():
    labels = REF.labels_for("pick")
    assert "PICK_BACKLOG" in labels and "CARRIER_TRANSIT_DELAY" not in labels
    good = (
        '```json\n{"order_id": "A-1", "label": "PICK_BACKLOG", "ops_note": "twenty characters or more", '
        '"client_note": "twenty characters or more", "confidence": 1}\n```'
    )
    assert parse_output(good, labels).confidence == 1.0
    for text, code in (
        ("[1, 2]", "schema_violation"),
        ("{", "invalid_json"),
        (good.replace('"confidence": 1', '"confidence": "high"'), "schema_violation"),
        (good.replace('"confidence": 1', '"confidence": 1, "extra": 2'), "schema_violation"),
        (good.replace("PICK_BACKLOG", "CARRIER_TRANSIT_DELAY"), "schema_violation"),
    ):
        with pytest.raises(NarrativeRejected) as err:
            parse_output(text, labels)
        assert err.value.code == code


def test_llm_configuration_from_the_environment():
    assert config_from_env({}) is None
    assert config_from_env({"E2A_LLM_BASE_URL": "http://127.0.0.1:11434/v1"}) is None  # no model
    cfg = config_from_env(
        {
            "E2A_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
            "E2A_LLM_MODEL": "qwen2.5",
            "E2A_LLM_DAILY_TOKENS": "20000",
            "E2A_LLM_MAX_RETRIES": "0",
        }
    )
    assert (cfg.model, cfg.api_key, cfg.daily_tokens, cfg.max_retries, cfg.cost(10, 10)) == (
        "qwen2.5",
        "unused",
        20000,
        0,
        None,
    )
    with pytest.raises(ValueError, match="E2A_LLM_DAILY_TOKENS"):
        config_from_env({"E2A_LLM_API_KEY": "k", "E2A_LLM_MODEL": "m", "E2A_LLM_DAILY_TOKENS": "lots"})


def test_backoff_is_exponential_capped_and_honours_retry_after():
    client = LLMClient(LLMConfig(model="m", base_url="http://127.0.0.1:9/v1", backoff_base_s=1, backoff_max_s=5))
    assert [client.backoff(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert client.backoff(1, retry_after=3) == 3 and client.backoff(1, retry_after=60) == 5
