"""Each rule of the policy lint on its own: a copy of the shipped (clean) seeds with one fault that the rule, and
only the rule, reports at file:line; the same rule on the clean copy reports nothing; every registered rule has
such a case here."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2a_dagster.lib.core.settings import SEEDS_DIR
from e2a_dagster.lib.quality.lint import RULES, lint_seeds, load_folder, run_rules
from e2a_dagster.lib.quality.lint_rules import REQUIRED_COLUMNS

Edit = Callable[[Path], None]
Expected = set[tuple[str, int, str, str]]  # file, line, severity, code


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def _write(path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def cell(name: str, line: int, column: str, value: str) -> Edit:
    """Set ``column`` on line ``line`` of ``name`` (line 1 is the header)."""

    def edit(folder: Path) -> None:
        rows = _rows(folder / name)
        rows[line - 1][rows[0].index(column)] = value
        _write(folder / name, rows)

    return edit


def copy(name: str, line: int, **changes: str) -> Edit:
    """Append a copy of line ``line`` of ``name`` with ``changes``; it lands on the file's next line."""

    def edit(folder: Path) -> None:
        rows = _rows(folder / name)
        row = list(rows[line - 1])
        for column, value in changes.items():
            row[rows[0].index(column)] = value
        _write(folder / name, [*rows, row])

    return edit


def delete(name: str) -> Edit:
    return lambda folder: (folder / name).unlink()


@dataclass(frozen=True)
class Case:
    rule: str  # the registered rule that reports the fault
    edits: tuple[Edit, ...]
    expected: Expected
    why: str

    @property
    def id(self) -> str:
        return f"{self.rule}: {self.why}"


def error(name: str, line: int, code: str) -> tuple[str, int, str, str]:
    return (name, line, "error", code)


def warning(name: str, line: int, code: str) -> tuple[str, int, str, str]:
    return (name, line, "warning", code)


T, WH, X, S = "tenants.csv", "warehouses.csv", "calendar_exceptions.csv", "carrier_services.csv"
P, R, C, RC, L = (
    "sla_policies.csv",
    "rate_cards.csv",
    "sla_credit_terms.csv",
    "reason_codes.csv",
    "shopify_locations.csv",
)
ISO_FROM, ISO_TO = "effective_from", "effective_to"
OPEN_TS = "9999-12-31T00:00:00+00:00"

CASES = [
    # tenants.csv
    Case("tenant_unique", (copy(T, 2),), {error(T, 4, "duplicate_key")}, "acme twice"),
    Case("tenant_id_format", (copy(T, 3, tenant_id="Globex Two"),), {error(T, 4, "invalid_tenant_id")}, "upper case"),
    Case(
        "tenant_time_zone", (cell(T, 2, "time_zone", "America/New_Yrok"),), {error(T, 2, "invalid_time_zone")}, "typo"
    ),
    Case(
        "tenant_time_zone",
        (cell(T, 2, "time_zone", "US"),),
        {error(T, 2, "invalid_time_zone")},
        "a folder of the tz database, not a zone (ZoneInfo raised IsADirectoryError)",
    ),
    Case(
        "tenant_currency",
        (copy(T, 3, tenant_id="initech", currency="XYZ"),),
        {error(T, 4, "invalid_currency")},
        "not ISO 4217",
    ),
    Case(
        "tenant_default_warehouse",
        (cell(T, 2, "default_warehouse_id", "NJ9"),),
        {error(T, 2, "unknown_reference")},
        "no such warehouse",
    ),
    Case(
        "tenant_approval_limits",
        (cell(T, 3, "auto_approve_max_amount_per_run", "-1"),),
        {error(T, 3, "negative_limit")},
        "negative",
    ),
    # warehouses.csv
    Case("warehouse_unique", (copy(WH, 2),), {error(WH, 4, "duplicate_key")}, "NJ1 twice"),
    Case(
        "warehouse_time_zone",
        (cell(WH, 3, "time_zone", "Europe/Berlinn"),),
        {error(WH, 3, "invalid_time_zone")},
        "typo",
    ),
    Case(
        "warehouse_holiday_calendar",
        (cell(WH, 2, "subdivision", "XX"),),
        {error(WH, 2, "unknown_holiday_calendar")},
        "no such state",
    ),
    Case(
        "warehouse_opening_hours",
        (cell(WH, 2, "open_time", "19:00"),),
        {error(WH, 2, "inverted_opening_hours")},
        "opens after closing",
    ),
    Case(
        "warehouse_opening_hours",
        (cell(WH, 3, "cutoff_time", "17:00"),),
        {error(WH, 3, "cutoff_outside_opening_hours")},
        "cutoff after closing",
    ),
    Case(
        "warehouse_working_days",
        (cell(WH, 2, "working_days", "1-5"),),
        {error(WH, 2, "invalid_working_days")},
        "a range",
    ),
    # calendar_exceptions.csv
    Case("exception_unique", (copy(X, 2),), {error(X, 8, "duplicate_key")}, "same day twice"),
    Case(
        "exception_warehouse", (cell(X, 2, "warehouse_id", "NJ9"),), {error(X, 2, "unknown_reference")}, "no such one"
    ),
    Case("exception_date", (cell(X, 3, "local_date", "2025-11-31"),), {error(X, 3, "invalid_date")}, "no such day"),
    Case("exception_hours", (cell(X, 2, "is_open", "yes"),), {error(X, 2, "invalid_boolean")}, "not true/false"),
    Case(
        "exception_hours",
        (cell(X, 2, "close_time", ""),),
        {error(X, 2, "invalid_opening_hours")},
        "an opening without a close",
    ),
    Case(
        "exception_hours",
        (cell(X, 2, "is_open", "false"),),
        {error(X, 2, "hours_on_closed_day")},
        "a closure with hours",
    ),
    # carrier_services.csv
    Case("service_unique", (copy(S, 2),), {error(S, 19, "duplicate_key")}, "any ground twice"),
    Case(
        "service_transit_days",
        (cell(S, 2, "transit_days", "0"),),
        {error(S, 2, "non_positive_transit_days")},
        "zero days",
    ),
    Case(
        "service_level_name",
        (copy(S, 2, service_level="Ground"),),
        {error(S, 19, "invalid_service_level")},
        "upper case",
    ),
    # sla_policies.csv
    Case("policy_unique", (copy(P, 6, tenant_id="globex"),), {error(P, 7, "duplicate_key")}, "acme_pick v2 twice"),
    Case(
        "policy_references",
        (copy(P, 6, policy_id="xx_pick", warehouse_id="XX9"),),
        {error(P, 7, "unknown_reference")},
        "no such warehouse",
    ),
    Case(
        "policy_stage_rule",
        (copy(P, 6, policy_id="xx_pick", stage="packing"),),
        {error(P, 7, "unknown_stage")},
        "no such stage",
    ),
    Case(
        "policy_stage_rule", (cell(P, 6, "rule", "cutoff"),), {error(P, 6, "rule_does_not_fit_stage")}, "pick by cutoff"
    ),
    Case(
        "policy_allowance",
        (cell(P, 6, "allowance_minutes", "0"),),
        {error(P, 6, "non_positive_allowance")},
        "zero minutes",
    ),
    Case(
        "policy_at_risk",
        (cell(P, 6, "at_risk_minutes", ""),),
        {error(P, 6, "invalid_at_risk_minutes")},
        "empty",
    ),
    Case(
        "policy_severity_thresholds",
        (cell(P, 6, "major_after_minutes", "-5"),),
        {error(P, 6, "negative_threshold")},
        "negative",
    ),
    Case(
        "policy_severity_thresholds",
        (cell(P, 6, "major_after_minutes", "300"),),
        {error(P, 6, "inverted_severity_thresholds")},
        "major after critical",
    ),
    Case(
        "policy_effective_range",
        (cell(P, 6, ISO_FROM, "9999-12-31T00:00:00+00:00"),),
        {error(P, 6, "empty_range")},
        "from = to",
    ),
    Case(
        "policy_ranges",
        (copy(P, 6, policy_version="3", effective_from="2026-09-01T00:00:00-04:00"),),
        {error(P, 7, "overlapping_range")},
        "v3 starts inside v2",
    ),
    Case(
        "policy_ranges",
        (
            cell(P, 6, ISO_TO, "2026-07-01T00:00:00-04:00"),
            copy(P, 6, policy_version="3", effective_from="2026-08-01T00:00:00-04:00", effective_to=OPEN_TS),
        ),
        {warning(P, 7, "gapped_range")},
        "a gap in an override warns",
    ),
    Case(
        "policy_ranges",
        (
            cell(P, 5, ISO_TO, "2026-01-01T00:00:00+00:00"),
            copy(P, 5, policy_version="2", effective_from="2026-02-01T00:00:00+00:00", effective_to=OPEN_TS),
        ),
        {error(P, 7, "gapped_range")},
        "a gap in a default is an error",
    ),
    Case(
        "policy_defaults",
        (cell(P, 5, "tenant_id", "acme"),),
        {error(P, 1, "missing_default_policy")},
        "deliver only for acme",
    ),
    # rate_cards.csv
    Case(
        "rate_card_unique",
        (cell(R, 4, "tier_min", ""), copy(R, 4)),
        {error(R, 15, "duplicate_key")},
        "pick unit twice",
    ),
    Case(
        "rate_card_tenant",
        (copy(R, 4, rate_card_id="initech_standard", tenant_id="initech"),),
        {error(R, 15, "unknown_reference")},
        "no such tenant",
    ),
    Case("rate_card_tenant", (cell(R, 9, "currency", "USD"),), {error(R, 9, "currency_mismatch")}, "globex in USD"),
    Case(
        "rate_card_charge_code",
        (copy(R, 4, charge_code="STORAGE"),),
        {error(R, 15, "unknown_charge_code")},
        "no such charge",
    ),
    Case("rate_card_amounts", (cell(R, 4, "rate", "-0.35"),), {error(R, 4, "negative_rate")}, "a negative rate"),
    Case(
        "rate_card_missing_rate", (cell(R, 4, "rate", ""),), {error(R, 4, "missing_rate")}, "pick unit without a rate"
    ),
    Case(
        "rate_card_tier_bounds",
        (cell(R, 4, "tier_min", "10"), cell(R, 4, "tier_max", "5")),
        {error(R, 4, "inverted_tier")},
        "10 to 5",
    ),
    Case(
        "rate_card_effective_range",
        (cell(R, 4, ISO_TO, "2026-01-01"),),
        {error(R, 4, "empty_range")},
        "from = to",
    ),
    Case(
        "rate_card_ranges",
        (copy(R, 4, rate_card_version="2", effective_from="2026-06-01"),),
        {error(R, 15, "overlapping_range")},
        "v2 starts inside v1",
    ),
    Case(
        "rate_card_ranges",
        (
            cell(R, 4, ISO_TO, "2026-06-01"),
            copy(R, 4, rate_card_version="2", effective_from="2026-07-01", effective_to="9999-12-31"),
        ),
        {warning(R, 15, "gapped_range")},
        "a month without a card",
    ),
    Case("rate_card_tiers", (cell(R, 3, "tier_min", "900"),), {error(R, 3, "overlapping_tiers")}, "900 inside 0-1000"),
    Case("rate_card_tiers", (cell(R, 3, "tier_min", "1100"),), {warning(R, 3, "gapped_tiers")}, "1001-1099 in no tier"),
    # sla_credit_terms.csv
    Case(
        "credit_terms_unique",
        (copy(C, 2, effective_to="2026-01-01"),),
        {error(C, 3, "duplicate_key")},
        "v1 twice (the copy's range is empty, so no overlap)",
    ),
    Case("credit_terms_tenant", (copy(C, 2, tenant_id="initech"),), {error(C, 3, "unknown_reference")}, "no such one"),
    Case("credit_terms_stage", (copy(C, 2, stage="packing"),), {error(C, 3, "unknown_stage")}, "no such stage"),
    Case("credit_terms_value", (cell(C, 2, "credit_value", "0"),), {error(C, 2, "non_positive_credit")}, "zero credit"),
    Case("credit_terms_cap", (cell(C, 2, "cap_pct_of_subtotal", "150"),), {error(C, 2, "invalid_cap")}, "150 %"),
    Case(
        "credit_terms_basis",
        (cell(C, 2, "basis_charge_code", "STORAGE"),),
        {error(C, 2, "unknown_reference")},
        "no such charge",
    ),
    Case(
        "credit_terms_ranges",
        (copy(C, 2, terms_version="2", effective_from="2026-06-01"),),
        {error(C, 3, "overlapping_range")},
        "v2 starts inside v1",
    ),
    Case(
        "credit_terms_ranges",
        (
            cell(C, 2, ISO_TO, "2026-06-01"),
            copy(C, 2, terms_version="2", effective_from="2026-07-01", effective_to="9999-12-31"),
        ),
        {warning(C, 3, "gapped_range")},
        "a month without terms",
    ),
    # reason_codes.csv, shopify_locations.csv
    Case("reason_unique", (copy(RC, 2),), {error(RC, 12, "duplicate_key")}, "PICK_BACKLOG twice"),
    Case("reason_stage", (cell(RC, 2, "stage", "picking"),), {error(RC, 2, "unknown_stage")}, "no such stage"),
    Case(
        "reason_code_format",
        (copy(RC, 2, reason_code="pick_backlog"),),
        {error(RC, 12, "invalid_reason_code")},
        "lower case",
    ),
    Case("location_references", (cell(L, 2, "tenant_id", "initech"),), {error(L, 2, "unknown_reference")}, "tenant"),
    Case("location_references", (cell(L, 3, "warehouse_id", "XX9"),), {error(L, 3, "unknown_reference")}, "warehouse"),
]

# Faults found while reading a file or a value: the reader, or the parser whichever rule reads the cell first.
READS = [
    ((delete(S),), {error(S, 1, "missing_file")}, "carrier_services.csv deleted"),
    ((cell(S, 1, "transit_days", "days"),), {error(S, 1, "missing_column")}, "transit_days renamed"),
    ((cell(T, 2, "auto_approve_max_per_run", "2.5"),), {error(T, 2, "invalid_number")}, "a fraction of a count"),
    ((cell(WH, 2, "open_time", "8am"),), {error(WH, 2, "invalid_time")}, "not HH:MM"),
    (
        (cell(X, 2, "open_time", "8h"),),
        {error(X, 2, "invalid_time"), error(X, 2, "invalid_opening_hours")},
        "an unreadable opening time is no opening time",
    ),
    ((cell(P, 6, ISO_FROM, "2026-06-01T00:00:00"),), {error(P, 6, "invalid_timestamp")}, "no UTC offset"),
    ((cell(R, 4, ISO_FROM, "2026-13-01"),), {error(R, 4, "invalid_date")}, "month 13, read by three rules"),
    ((cell(R, 4, "tier_min", "1.5"),), {error(R, 4, "invalid_number")}, "a fraction of a unit, read by two rules"),
    (
        (cell(C, 2, "credit_value", "ten"),),
        {error(C, 2, "invalid_number"), error(C, 2, "non_positive_credit")},
        "words for a credit",
    ),
]


def _found(findings) -> Expected:
    return {(f.file.split("/")[-1], f.line, f.severity, f.code) for f in findings}


def _faulty(tmp_path: Path, edits: tuple[Edit, ...]) -> Path:
    folder = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, folder)
    for edit in edits:
        edit(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_rule_reports_its_fault_and_nothing_else_does(case, tmp_path):
    folder = _faulty(tmp_path, case.edits)
    assert _found(lint_seeds(folder)) == case.expected
    (rule,) = [r for r in RULES if r.name == case.rule]
    assert {f for f in case.expected if f[0] == rule.file} == case.expected  # the rule names its own file
    assert _found(run_rules(folder, [r for r in RULES if r is not rule])) & case.expected == set()
    assert _found(run_rules(folder, [rule])) == case.expected


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_finds_nothing_in_the_shipped_seeds(rule):
    folder = load_folder(SEEDS_DIR)
    assert list(rule.check(folder)) == [] and folder.reported == []


@pytest.mark.parametrize(("edits", "expected", "why"), READS, ids=[why for _, _, why in READS])
def test_unreadable_files_and_values_are_reported_once(edits, expected, why, tmp_path):
    findings = lint_seeds(_faulty(tmp_path, edits))
    assert _found(findings) == expected and len(findings) == len(expected), why


def test_every_registered_rule_has_a_case():
    assert {c.rule for c in CASES} == {r.name for r in RULES}
    assert len({r.name for r in RULES}) == len(RULES)


def test_rules_run_file_by_file_in_the_order_the_files_are_read():
    files = list(REQUIRED_COLUMNS)
    order = [files.index(r.file) for r in RULES]
    assert order == sorted(order) and set(order) == set(range(len(files)))
