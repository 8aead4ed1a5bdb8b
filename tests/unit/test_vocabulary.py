"""Each vocabulary is written once (lib/core/vocabulary.py); the SQL that spells it (a ``case`` producing the words, an
``accepted_values`` test on the column) must agree, and no other Python module keeps a copy of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from e2a_dagster.lib.core import vocabulary
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, PROJECT_ROOT

MODELS = DBT_PROJECT_DIR / "models"


def _accepted_values(yml: Path, model: str, column: str) -> list[str]:
    doc = yaml.safe_load(yml.read_text())
    (node,) = [m for m in doc.get("models", []) + doc.get("seeds", []) if m["name"] == model]
    (col,) = [c for c in node["columns"] if c["name"] == column]
    (test,) = [t["accepted_values"] for t in col.get("data_tests", []) if "accepted_values" in t]
    return [str(v) for v in test["arguments"]["values"]]


@pytest.mark.parametrize(
    ("yml", "model", "column", "words"),
    [
        ("marts/operations/_sla_models.yml", "fct_sla_evaluations", "stage", vocabulary.SLA_STAGES),
        ("marts/operations/_sla_models.yml", "fct_sla_evaluations", "status", vocabulary.SLA_STATUSES),
        ("marts/operations/_sla_models.yml", "fct_sla_evaluations", "severity", vocabulary.SEVERITIES),
        ("marts/operations/_sla_models.yml", "fct_sla_evaluations", "due_source", vocabulary.DUE_SOURCES),
        ("marts/operations/_sla_models.yml", "fct_sla_exceptions", "status", vocabulary.EXCEPTION_STATUSES),
        (
            "marts/finance/_finance_models.yml",
            "fct_invoice_reconciliation",
            "discrepancy_type",
            vocabulary.DISCREPANCY_TYPES,
        ),
        ("marts/finance/_finance_models.yml", "fct_expected_charges", "period_status", vocabulary.PERIOD_STATUSES),
        ("reference/_seeds.yml", "rate_cards", "charge_code", vocabulary.RATE_CARD_CHARGE_CODES),
        ("reference/_seeds.yml", "sla_credit_terms", "basis_charge_code", vocabulary.METERED_CHARGE_CODES),
        ("staging/billing/_models.yml", "stg_billing__invoice_lines", "charge_code", vocabulary.INVOICE_CHARGE_CODES),
    ],
)
def test_accepted_values_tests_are_the_vocabulary(yml, model, column, words):
    assert sorted(_accepted_values(MODELS / yml, model, column)) == sorted(words)


def _case_words(sql: Path, cte: str) -> set[str]:
    """The words a CTE's ``case`` expressions produce (``then 'x'`` / ``else 'x'``)."""
    text = sql.read_text()
    body = text[text.index(f"{cte} as (") :]
    body = body[: body.index("\n)\n")]
    return set(re.findall(r"(?:then|else) '([a-z_]+)'", body))


def test_the_sql_classifies_into_the_vocabulary_only():
    assert _case_words(MODELS / "marts/finance/fct_invoice_reconciliation.sql", "classified") == set(
        vocabulary.DISCREPANCY_TYPES
    )
    assert _case_words(MODELS / "marts/operations/fct_sla_evaluations.sql", "statused") == set(vocabulary.SLA_STATUSES)
    severity = (DBT_PROJECT_DIR / "macros/sla_severity.sql").read_text()
    assert set(re.findall(r"(?:then|else) '([a-z_]+)'", severity)) == set(vocabulary.SEVERITIES)


def test_no_python_module_keeps_its_own_copy():
    """A tuple literal that spells a whole vocabulary outside lib/core/vocabulary.py is a copy that can drift."""
    lists = {
        name: words
        for name, words in vars(vocabulary).items()
        if name.isupper() and isinstance(words, tuple) and len(words) >= 3
    }
    copies = []
    for path in [*(PROJECT_ROOT / "e2a_dagster").rglob("*.py"), *(PROJECT_ROOT / "benchmarks").glob("*.py")]:
        if path.name == "vocabulary.py":
            continue
        text = path.read_text()
        for name, words in lists.items():
            literal = r"\s*,\s*".join(rf"""["']{re.escape(w)}["']""" for w in words)
            if re.search(literal, text):
                copies.append(f"{path.relative_to(PROJECT_ROOT)}: {name}")
    assert copies == []


def _jinja_set(sql: Path, name: str):
    """The literal a model assigns with ``{%- set name = ... %}`` (a dict, or a string of quoted words)."""
    import ast

    match = re.search(r"\{%-?\s*set " + name + r"\s*=\s*(.+?)\s*-?%\}", sql.read_text(), re.S)
    assert match, f"{sql.name}: no `set {name}`"
    value = ast.literal_eval(match.group(1))
    return value if isinstance(value, dict) else set(re.findall(r"'([a-z_]+)'", value))


def test_the_shopify_statuses_are_lib_shopifys():
    """Shopify's carrier statuses and void fulfillment statuses are read by lib/ingestion/shopify.py (fulfillment
    documents) and by the intermediate model deriving events from order versions: the model's words are the module's."""
    from e2a_dagster.lib.ingestion.shopify import SHIPMENT_STATUS_EVENTS, VOID_FULFILLMENT_STATUSES

    sql = MODELS / "intermediate/int_shopify_order_events_versioned.sql"
    # The model takes labels from the fulfillment itself (its tracking number), not from a shipment status.
    carrier_statuses = {k: v for k, v in SHIPMENT_STATUS_EVENTS.items() if v != "label_printed"}
    assert _jinja_set(sql, "shipment_events") == carrier_statuses
    assert _jinja_set(sql, "void_fulfillments") == set(VOID_FULFILLMENT_STATUSES)
