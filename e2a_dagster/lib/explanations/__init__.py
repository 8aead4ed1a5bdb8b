"""Exception narratives: facts → (LLM or template) → validated, grounded notes in ``actions.exception_narratives``.

One module per concern, in the order a narrative is made:

- ``reference_data``: the reference data narratives need (tenants, warehouses, policies, reason codes, transit
  days), read from the reference folder.
- ``calendar_facts``: the weekends, public holidays and closures the clock crossed, read from
  ``reference.warehouse_calendar`` (the one home of the calendar, written by ``lib/sla/calendar.py``).
- ``facts``: the PII-free facts of each exception, read from the SLA marts and the event timeline (whitelisted
  columns only: event payloads and attributes, which may hold customer PII, are never read).
- ``templates``: the deterministic template notes (no LLM, or fallback).
- ``grounding``: the LLM's answer parsed against a schema and grounded in the facts (right order id, every
  number, date and time present in the facts, no internal terms in the client note).
- ``writer``: generation only for new or changed inputs (``input_hash`` = facts + prompt version + model), the
  LLM call behind budget and breaker, any failure → the template note with the reason in ``status``
  (``fallback:<code>``); the upsert and which narrative is current. Nothing here fails the pipeline.

Beside them, what the writer calls: ``prompts`` (the versioned Jinja2 prompt templates), ``llm`` (the
OpenAI-compatible client) and ``llm_guard`` (the token budget and the circuit breaker, kept in the database).
"""
