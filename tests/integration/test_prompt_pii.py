"""No customer PII ever reaches a prompt: simulated orders whose events carry Faker PII (extra fields
and attributes, kept in raw payloads) get exceptions for every stage; every rendered prompt and note is
scanned."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import sqlalchemy as sa
from faker import Faker

from e2a_dagster.lib.explanations.facts import load_exception_facts
from e2a_dagster.lib.explanations.prompts import Prompt
from e2a_dagster.lib.explanations.reference_data import NarrativeReference
from e2a_dagster.lib.explanations.templates import LIMITS, template_narrative
from e2a_dagster.lib.ingestion.ingest import ingest_file
from e2a_dagster.lib.simulator.simulator import Simulator
from tests.explain_fixtures import add_exception, create_marts, drop_schema
from tests.helpers import write_jsonl

STAGES = ("pick", "pack", "ship", "deliver")
POLICY = {
    "pick": "default_pick",
    "pack": "default_pack",
    "ship": "default_ship",
    "deliver": "default_deliver",
}


def test_rendered_prompts_carry_no_customer_pii(engine, reference, events_dir, uid):
    fake = Faker(["en_US", "de_DE"])
    Faker.seed(6)
    sim = Simulator(reference, seed=6)
    start = datetime.fromisoformat("2026-03-02T08:00:00-05:00")
    timelines = [
        order.events
        for order in sim.orders(40, start, start + timedelta(days=5))
        if order.channel == "landing" and any(e.record["event_type"] == "order_paid" for e in order.events)
    ][:30]
    pii: list[str] = []
    records = []
    for n, timeline in enumerate(timelines):
        person = {
            "name": fake.name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "address": fake.street_address(),
            "city": fake.city(),
        }
        pii += [person["name"], person["email"], person["phone"], person["address"]]
        for i, event in enumerate(timeline):
            record = dict(event.record, order_id=f"P{uid}-{n}", event_id=f"P{uid}-{n}-{i}")
            record.update(
                customer_name=person["name"],
                customer_email=person["email"],
                attributes={"shipping_address": person, "note": f"call {person['phone']}"},
            )
            records.append(record)
    result = ingest_file(engine, write_jsonl(events_dir / f"pii-{uid}.jsonl", records), reference)
    assert result.loaded == len(records) and result.rejected == 0
    with engine.connect() as conn:  # the PII really is in the database, next to the facts we read
        stored = conn.execute(
            sa.text(
                "select count(*) from raw.order_events where order_id like :p and payload::text like '%customer_email%'"
            ),
            {"p": f"P{uid}-%"},
        ).scalar()
    assert stored == len(records)

    schema = f"x_{uid}"
    create_marts(engine, schema)
    try:
        variants = itertools.cycle(
            [
                ("late", "minor"),
                ("late", "major"),
                ("late", "critical"),
                ("overdue", "major"),
                ("overdue", "critical"),
                ("at_risk", None),
            ]
        )
        for n, timeline in enumerate(timelines):
            at = {e.record["event_type"]: e.occurred_at for e in timeline}
            t0 = at["order_paid"]
            tenant = timeline[0].record["tenant_id"]
            for stage in STAGES:
                status, severity = next(variants)
                due = t0 + timedelta(hours=2)
                add_exception(
                    engine,
                    schema,
                    exception_id=f"e{uid}-{n}-{stage}",
                    order_id=f"P{uid}-{n}",
                    stage=stage,
                    status=status,
                    severity=severity,
                    tenant_id=tenant,
                    warehouse_id=reference.default_warehouse(tenant),
                    carrier=timeline[-1].record.get("carrier"),
                    started_at=t0.isoformat(),
                    due_at=due.isoformat(),
                    ended_at=(due + timedelta(minutes=75)).isoformat() if status == "late" else None,
                    minutes_late=75 if status == "late" else None,
                    policy_id=POLICY[stage],
                )
        ref = NarrativeReference.load()
        prompt = Prompt.load("exception_narrative")
        with engine.connect() as conn:
            items = load_exception_facts(conn, schema, reference=ref)
        assert len(items) == len(timelines) * len(STAGES)
        assert all(len(item.facts["timeline"]) >= 2 for item in items)  # the timelines did come through
        rendered = []
        for item in items:
            rendered += prompt.render(facts=item.facts, allowed_labels=ref.labels_for(item.stage), limits=LIMITS)
            draft = template_narrative(item, ref)
            rendered += [draft.ops_note, draft.client_note]
        haystack = "\n".join(rendered).lower()
        leaked = [value for value in pii if value.lower() in haystack]
        assert leaked == []
        assert "@" not in haystack and "customer_email" not in haystack and "shipping_address" not in haystack
    finally:
        drop_schema(engine, schema)
