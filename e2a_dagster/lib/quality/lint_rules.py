"""The policy lint's rules: one small function per check of the reference folder, registered with ``@rule`` in
the order ``lint.lint_seeds`` runs them.

A rule takes the loaded folder (:class:`Folder`: each file's rows with their line numbers) and yields its
findings. Values are parsed through the folder (``number``, ``clock``, ``day``, ``instant``): a value that does
not parse is reported once, by the first rule that reads it, and reads as ``None`` for every rule. The CSV files
themselves are read by ``lint.py`` (with line numbers); this module never opens a file.

To add a check: write a function below the file it checks, decorate it with ``@rule("<file>.csv")`` (the rule
is named after the function) and add a case for it to ``tests/unit/test_lint_rules.py``, which fails while a
registered rule has none. Rules of one file stay together, in the order the checks apply to a row."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from e2a_dagster.lib.core.reference import is_open
from e2a_dagster.lib.core.vocabulary import METERED_CHARGE_CODES, RATE_CARD_CHARGE_CODES, SLA_STAGES

STAGES = SLA_STAGES
RULE_FOR_STAGE = {"pick": "duration", "pack": "duration", "ship": "cutoff", "deliver": "transit_days"}
CHARGE_CODES = RATE_CARD_CHARGE_CODES
OPEN_END_DATE = date(9999, 12, 31)

# The files lint reads, in the order it reads them, with the columns each must have.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenants.csv": ("tenant_id", "currency", "time_zone", "default_warehouse_id"),
    "warehouses.csv": (
        "warehouse_id",
        "time_zone",
        "country",
        "subdivision",
        "open_time",
        "close_time",
        "cutoff_time",
        "working_days",
    ),
    "calendar_exceptions.csv": ("warehouse_id", "local_date", "is_open", "open_time", "close_time"),
    "carrier_services.csv": ("carrier", "service_level", "transit_days"),
    "sla_policies.csv": (
        "policy_id",
        "policy_version",
        "tenant_id",
        "warehouse_id",
        "carrier",
        "service_level",
        "stage",
        "rule",
        "allowance_minutes",
        "at_risk_minutes",
        "major_after_minutes",
        "critical_after_minutes",
        "effective_from",
        "effective_to",
    ),
    "rate_cards.csv": (
        "rate_card_id",
        "rate_card_version",
        "tenant_id",
        "charge_code",
        "rate",
        "tier_min",
        "tier_max",
        "markup_pct",
        "minimum_amount",
        "currency",
        "effective_from",
        "effective_to",
    ),
    "sla_credit_terms.csv": (
        "tenant_id",
        "terms_version",
        "stage",
        "credit_type",
        "credit_value",
        "basis_charge_code",
        "cap_pct_of_subtotal",
        "effective_from",
        "effective_to",
    ),
    "reason_codes.csv": ("reason_code", "stage", "label"),
    "shopify_locations.csv": ("tenant_id", "location_id", "warehouse_id"),
}

TENANTS, WAREHOUSES, EXCEPTIONS, SERVICES = (
    "tenants.csv",
    "warehouses.csv",
    "calendar_exceptions.csv",
    "carrier_services.csv",
)
POLICIES, CARDS, TERMS, REASONS, LOCATIONS = (
    "sla_policies.csv",
    "rate_cards.csv",
    "sla_credit_terms.csv",
    "reason_codes.csv",
    "shopify_locations.csv",
)


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    file: str
    line: int
    code: str
    message: str
    hint: str

    def format(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: [{self.code}] {self.message} (fix: {self.hint})"

    def as_dict(self) -> dict:
        return asdict(self)


Row = tuple[int, dict[str, str]]


class Folder:
    """The reference folder as lint loaded it: ``tables`` maps a file name to its rows (line number, stripped
    cells); a file that is missing or lacks a required column has no rows (``lint.py`` reported it)."""

    def __init__(self, label: str, tables: dict[str, list[Row]]):
        self.label = label  # "seeds" for the default folder: findings read "seeds/<file>"
        self.tables = tables
        self.reported: list[Finding] = []  # findings in the order they were made
        self._parsed: dict[tuple[str, int, str], object] = {}

    def rows(self, name: str) -> list[Row]:
        return self.tables.get(name, [])

    def column(self, name: str, column: str) -> set[str]:
        return {r[column] for _, r in self.rows(name)}

    def tenant_currency(self) -> dict[str, str]:
        return {r["tenant_id"]: r["currency"] for _, r in self.rows(TENANTS)}

    def finding(self, severity: str, name: str, line: int, code: str, message: str, hint: str) -> Finding:
        return Finding(severity, f"{self.label}/{name}", line, code, message, hint)

    def error(self, name: str, line: int, code: str, message: str, hint: str) -> Finding:
        return self.finding("error", name, line, code, message, hint)

    def warning(self, name: str, line: int, code: str, message: str, hint: str) -> Finding:
        return self.finding("warning", name, line, code, message, hint)

    def report(self, finding: Finding) -> None:
        self.reported.append(finding)

    # -- parsers that report instead of raising (once per cell, whichever rule reads it first) --------------

    def _once(self, name: str, line: int, column: str, parse: Callable[[], tuple[object, Finding | None]]):
        key = (name, line, column)
        if key not in self._parsed:
            value, finding = parse()
            if finding is not None:
                self.report(finding)
            self._parsed[key] = value
        return self._parsed[key]

    def number(self, name: str, line: int, column: str, value: str, *, integer: bool = False) -> Decimal | None:
        def parse() -> tuple[Decimal | None, Finding | None]:
            if value == "":
                return None, None
            try:
                number = Decimal(value)
                if integer and number != number.to_integral():
                    raise InvalidOperation
                return number, None
            except InvalidOperation:
                kind = "an integer" if integer else "a decimal number"
                return None, self.error(
                    name,
                    line,
                    "invalid_number",
                    f"{column} = {value!r} is not {kind}",
                    f"write {column} as {kind} (e.g. 120)",
                )

        return self._once(name, line, column, parse)

    def clock(self, name: str, line: int, column: str, value: str) -> time | None:
        def parse() -> tuple[time | None, Finding | None]:
            try:
                return time.fromisoformat(value), None
            except ValueError:
                return None, self.error(
                    name,
                    line,
                    "invalid_time",
                    f"{column} = {value!r} is not a time of day",
                    f"write {column} as HH:MM, 24-hour local time",
                )

        return self._once(name, line, column, parse)

    def day(self, name: str, line: int, column: str, value: str) -> date | None:
        def parse() -> tuple[date | None, Finding | None]:
            try:
                return date.fromisoformat(value), None
            except ValueError:
                return None, self.error(
                    name,
                    line,
                    "invalid_date",
                    f"{column} = {value!r} is not a date",
                    f"write {column} as YYYY-MM-DD (open-ended: 9999-12-31)",
                )

        return self._once(name, line, column, parse)

    def instant(self, name: str, line: int, column: str, value: str) -> datetime | None:
        def parse() -> tuple[datetime | None, Finding | None]:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                return None, self.error(
                    name,
                    line,
                    "invalid_timestamp",
                    f"{column} = {value!r} is not a timestamp with offset",
                    f"write {column} as ISO-8601 with a UTC offset, e.g. 2026-06-01T00:00:00-04:00",
                )
            return parsed, None

        return self._once(name, line, column, parse)


@dataclass(frozen=True)
class Rule:
    name: str
    file: str  # the file whose rows it checks (and names in its findings)
    check: Callable[[Folder], Iterator[Finding]]


RULES: list[Rule] = []  # in the order lint runs them: by file, each file's checks in row order


def rule(file: str) -> Callable:
    """Register the decorated function as a lint rule over ``file``, named after the function; rules run in the
    order they are defined."""

    def register(check: Callable[[Folder], Iterator[Finding]]) -> Callable[[Folder], Iterator[Finding]]:
        if check.__name__ in {r.name for r in RULES}:
            raise ValueError(f"lint rule {check.__name__} is registered twice")
        RULES.append(Rule(check.__name__, file, check))
        return check

    return register


# -- checks shared by several files ------------------------------------------------------------------------


def duplicates(folder: Folder, name: str, key: tuple[str, ...]) -> Iterator[Finding]:
    seen: dict[tuple, int] = {}
    for line, row in folder.rows(name):
        k = tuple(row.get(c, "") for c in key)
        if k in seen:
            yield folder.error(
                name,
                line,
                "duplicate_key",
                f"{'/'.join(key)} = {'/'.join(k)} repeats line {seen[k]}",
                "delete one of the two rows or give this one a new version",
            )
        else:
            seen[k] = line


def ranges(
    folder: Folder,
    name: str,
    groups: dict[tuple, list[tuple[int, object, object]]],
    what: str,
    *,
    gap_is_error: Callable[[tuple], bool] | None = None,
) -> Iterator[Finding]:
    """Half-open effective ranges [from, to) per group: overlaps are errors, gaps warnings (or errors)."""
    for key, items in groups.items():
        items = sorted(items, key=lambda i: (i[1], i[0]))
        for (line_a, _, to_a), (line_b, from_b, _) in itertools.pairwise(items):
            scope = ", ".join(str(k) for k in key)
            if from_b < to_a:
                yield folder.error(
                    name,
                    line_b,
                    "overlapping_range",
                    f"{what} ({scope}) starts before the range on line {line_a} ends ({to_a})",
                    f"end line {line_a} at {from_b} (effective_to is exclusive) or start this row at {to_a}",
                )
            elif from_b > to_a:
                severity = "error" if gap_is_error and gap_is_error(key) else "warning"
                yield folder.finding(
                    severity,
                    name,
                    line_b,
                    "gapped_range",
                    f"{what} ({scope}) has a gap: line {line_a} ends {to_a}, this row starts {from_b}",
                    f"set effective_to on line {line_a} to {from_b}, or start this row at {to_a}",
                )


def is_iso_currency(code: str) -> bool:
    """An active ISO 4217 code (Babel's CLDR list: JPY, CHF, BRL, ...); no list of supported currencies here."""
    from babel.numbers import list_currencies

    return bool(re.fullmatch(r"[A-Z]{3}", code)) and code in list_currencies()


def time_zone_error(folder: Folder, name: str, line: int, column: str, value: str) -> Finding | None:
    try:
        ZoneInfo(value)
        return None
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the tz database, e.g. "US"
        return folder.error(
            name,
            line,
            "invalid_time_zone",
            f"{column} = {value!r} is not an IANA time zone",
            "use an IANA name such as America/New_York or Europe/Berlin",
        )


def unknown_tenant(folder: Folder, name: str, line: int, tenant_id: str) -> Finding:
    return folder.error(
        name,
        line,
        "unknown_reference",
        f"tenant_id {tenant_id!r} is not in tenants.csv",
        "fix the tenant id or add the tenant",
    )


# -- tenants.csv --------------------------------------------------------------------------------------------


@rule(TENANTS)
def tenant_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, TENANTS, ("tenant_id",))


@rule(TENANTS)
def tenant_id_format(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TENANTS):
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", r["tenant_id"]):
            yield folder.error(
                TENANTS,
                line,
                "invalid_tenant_id",
                f"tenant_id {r['tenant_id']!r} is not [a-z0-9_-]",
                "use lower-case letters, digits, '_' or '-'",
            )


@rule(TENANTS)
def tenant_time_zone(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TENANTS):
        if finding := time_zone_error(folder, TENANTS, line, "time_zone", r["time_zone"]):
            yield finding


@rule(TENANTS)
def tenant_currency(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TENANTS):
        if not is_iso_currency(r["currency"]):
            yield folder.error(
                TENANTS,
                line,
                "invalid_currency",
                f"currency {r['currency']!r} is not ISO 4217",
                "use a three-letter code such as USD or EUR",
            )


@rule(TENANTS)
def tenant_default_warehouse(folder: Folder) -> Iterator[Finding]:
    warehouse_ids = folder.column(WAREHOUSES, "warehouse_id")
    for line, r in folder.rows(TENANTS):
        if r["default_warehouse_id"] not in warehouse_ids:
            yield folder.error(
                TENANTS,
                line,
                "unknown_reference",
                f"default_warehouse_id {r['default_warehouse_id']!r} is not in warehouses.csv",
                "add the warehouse to warehouses.csv or fix the id",
            )


@rule(TENANTS)
def tenant_approval_limits(folder: Folder) -> Iterator[Finding]:
    """Approval settings (lib/invoicing/adjustments.py): optional; empty = no auto-approval / the run guard's
    defaults."""
    for line, r in folder.rows(TENANTS):
        for column, integer in (
            ("auto_approve_limit", False),
            ("auto_approve_max_per_run", True),
            ("auto_approve_max_amount_per_run", False),
        ):
            value = folder.number(TENANTS, line, column, (r.get(column) or "").strip(), integer=integer)
            if value is not None and value < 0:
                yield folder.error(
                    TENANTS,
                    line,
                    "negative_limit",
                    f"{column} {value} is negative",
                    f"write {column} as 0 or more (empty = the default)",
                )


# -- warehouses.csv -----------------------------------------------------------------------------------------


@rule(WAREHOUSES)
def warehouse_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, WAREHOUSES, ("warehouse_id",))


@rule(WAREHOUSES)
def warehouse_time_zone(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(WAREHOUSES):
        if finding := time_zone_error(folder, WAREHOUSES, line, "time_zone", r["time_zone"]):
            yield finding


@rule(WAREHOUSES)
def warehouse_holiday_calendar(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(WAREHOUSES):
        try:
            holidays_lib.country_holidays(r["country"], subdiv=r["subdivision"] or None, years=2026)
        except (NotImplementedError, KeyError, ValueError) as exc:
            yield folder.error(
                WAREHOUSES,
                line,
                "unknown_holiday_calendar",
                f"no holiday calendar for country {r['country']!r} / subdivision {r['subdivision']!r} ({exc})",
                "use an ISO 3166 country and a subdivision the `holidays` library knows, or leave the "
                "subdivision empty",
            )


@rule(WAREHOUSES)
def warehouse_opening_hours(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(WAREHOUSES):
        opens, closes, cutoff = (
            folder.clock(WAREHOUSES, line, c, r[c]) for c in ("open_time", "close_time", "cutoff_time")
        )
        if opens and closes and opens >= closes:
            yield folder.error(
                WAREHOUSES,
                line,
                "inverted_opening_hours",
                f"open_time {r['open_time']} is not before close_time {r['close_time']}",
                "swap the two times (overnight shifts are not supported)",
            )
        elif opens and closes and cutoff and not (opens < cutoff <= closes):
            yield folder.error(
                WAREHOUSES,
                line,
                "cutoff_outside_opening_hours",
                f"cutoff_time {r['cutoff_time']} is outside opening hours {r['open_time']}–{r['close_time']}",
                "set cutoff_time after open_time and no later than close_time",
            )


@rule(WAREHOUSES)
def warehouse_working_days(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(WAREHOUSES):
        if not re.fullmatch(r"[1-7](\|[1-7])*", r["working_days"]):
            yield folder.error(
                WAREHOUSES,
                line,
                "invalid_working_days",
                f"working_days {r['working_days']!r} is not a list of ISO weekdays",
                "write e.g. 1|2|3|4|5 (1 = Monday … 7 = Sunday)",
            )


# -- calendar_exceptions.csv --------------------------------------------------------------------------------


@rule(EXCEPTIONS)
def exception_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, EXCEPTIONS, ("warehouse_id", "local_date"))


@rule(EXCEPTIONS)
def exception_warehouse(folder: Folder) -> Iterator[Finding]:
    warehouse_ids = folder.column(WAREHOUSES, "warehouse_id")
    for line, r in folder.rows(EXCEPTIONS):
        if r["warehouse_id"] not in warehouse_ids:
            yield folder.error(
                EXCEPTIONS,
                line,
                "unknown_reference",
                f"warehouse_id {r['warehouse_id']!r} is not in warehouses.csv",
                "fix the id or add the warehouse",
            )


@rule(EXCEPTIONS)
def exception_date(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(EXCEPTIONS):
        folder.day(EXCEPTIONS, line, "local_date", r["local_date"])  # the parser reports a date that is not one
    yield from ()


@rule(EXCEPTIONS)
def exception_hours(folder: Folder) -> Iterator[Finding]:
    """An opening has hours, open before close; a closure has none; ``is_open`` is true or false."""
    for line, r in folder.rows(EXCEPTIONS):
        try:
            opening = is_open(r)
        except ValueError:
            yield folder.error(
                EXCEPTIONS,
                line,
                "invalid_boolean",
                f"is_open {r['is_open']!r} is not true/false",
                "write true or false",
            )
            continue
        if opening:
            opens = folder.clock(EXCEPTIONS, line, "open_time", r["open_time"]) if r["open_time"] else None
            closes = folder.clock(EXCEPTIONS, line, "close_time", r["close_time"]) if r["close_time"] else None
            if opens is None or closes is None or opens >= closes:
                yield folder.error(
                    EXCEPTIONS,
                    line,
                    "invalid_opening_hours",
                    "an opening needs open_time before close_time",
                    "fill open_time and close_time (HH:MM), open before close",
                )
        elif r["open_time"] or r["close_time"]:
            yield folder.error(
                EXCEPTIONS,
                line,
                "hours_on_closed_day",
                "a closure has opening hours",
                "leave open_time and close_time empty when is_open is false",
            )


# -- carrier_services.csv -----------------------------------------------------------------------------------


@rule(SERVICES)
def service_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, SERVICES, ("carrier", "service_level"))


@rule(SERVICES)
def service_transit_days(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(SERVICES):
        days = folder.number(SERVICES, line, "transit_days", r["transit_days"], integer=True)
        if days is not None and days < 1:
            yield folder.error(
                SERVICES,
                line,
                "non_positive_transit_days",
                f"transit_days {r['transit_days']} is below 1",
                "transit days count carrier business days: 1 or more",
            )


@rule(SERVICES)
def service_level_name(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(SERVICES):
        if r["service_level"] in ("", "*") or r["service_level"] != r["service_level"].lower():
            yield folder.error(
                SERVICES,
                line,
                "invalid_service_level",
                f"service_level {r['service_level']!r}",
                "use a lower-case service level (ground, express, overnight)",
            )


# -- sla_policies.csv ---------------------------------------------------------------------------------------


@rule(POLICIES)
def policy_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, POLICIES, ("policy_id", "policy_version"))


@rule(POLICIES)
def policy_references(folder: Folder) -> Iterator[Finding]:
    references = (
        ("tenant_id", folder.column(TENANTS, "tenant_id"), TENANTS),
        ("warehouse_id", folder.column(WAREHOUSES, "warehouse_id"), WAREHOUSES),
        ("carrier", folder.column(SERVICES, "carrier"), SERVICES),
        ("service_level", folder.column(SERVICES, "service_level"), SERVICES),
    )
    for line, r in folder.rows(POLICIES):
        for column, known, where in references:
            if r[column] != "*" and r[column] not in known:
                yield folder.error(
                    POLICIES,
                    line,
                    "unknown_reference",
                    f"{column} {r[column]!r} is not in {where}",
                    f"use '*' or a {column} listed in {where}",
                )


@rule(POLICIES)
def policy_stage_rule(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(POLICIES):
        stage = r["stage"]
        if stage not in STAGES:
            yield folder.error(POLICIES, line, "unknown_stage", f"stage {stage!r}", f"use one of {', '.join(STAGES)}")
        elif r["rule"] != RULE_FOR_STAGE[stage]:
            yield folder.error(
                POLICIES,
                line,
                "rule_does_not_fit_stage",
                f"stage {stage} with rule {r['rule']!r}",
                f"stage {stage} uses rule {RULE_FOR_STAGE[stage]}",
            )


@rule(POLICIES)
def policy_allowance(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(POLICIES):
        allowance = folder.number(POLICIES, line, "allowance_minutes", r["allowance_minutes"], integer=True)
        if r["rule"] == "duration" and (allowance is None or allowance <= 0):
            yield folder.error(
                POLICIES,
                line,
                "non_positive_allowance",
                f"allowance_minutes {r['allowance_minutes'] or '(empty)'} for a duration rule",
                "give a positive number of business minutes",
            )


@rule(POLICIES)
def policy_at_risk(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(POLICIES):
        at_risk = folder.number(POLICIES, line, "at_risk_minutes", r["at_risk_minutes"], integer=True)
        if at_risk is None or at_risk < 0:
            yield folder.error(
                POLICIES,
                line,
                "invalid_at_risk_minutes",
                f"at_risk_minutes {r['at_risk_minutes'] or '(empty)'}",
                "give 0 or more minutes",
            )


@rule(POLICIES)
def policy_severity_thresholds(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(POLICIES):
        major = folder.number(POLICIES, line, "major_after_minutes", r["major_after_minutes"], integer=True)
        critical = folder.number(POLICIES, line, "critical_after_minutes", r["critical_after_minutes"], integer=True)
        if major is None or critical is None:
            continue
        if major < 0 or critical < 0:
            yield folder.error(
                POLICIES,
                line,
                "negative_threshold",
                "severity thresholds must not be negative",
                "use 0 or more minutes",
            )
        elif major >= critical:
            yield folder.error(
                POLICIES,
                line,
                "inverted_severity_thresholds",
                f"major_after_minutes {major} is not below critical_after_minutes {critical}",
                "major must start before critical: swap the two values",
            )


def policy_spans(folder: Folder) -> dict[tuple, list[tuple[int, datetime, datetime]]]:
    """The non-empty effective ranges of the policies, by tenant, warehouse, carrier, service level and stage."""
    groups: dict[tuple, list] = {}
    for line, r in folder.rows(POLICIES):
        start = folder.instant(POLICIES, line, "effective_from", r["effective_from"])
        end = folder.instant(POLICIES, line, "effective_to", r["effective_to"])
        if start and end and start < end:
            key = (r["tenant_id"], r["warehouse_id"], r["carrier"], r["service_level"], r["stage"])
            groups.setdefault(key, []).append((line, start, end))
    return groups


@rule(POLICIES)
def policy_effective_range(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(POLICIES):
        start = folder.instant(POLICIES, line, "effective_from", r["effective_from"])
        end = folder.instant(POLICIES, line, "effective_to", r["effective_to"])
        if start and end and start >= end:
            yield folder.error(
                POLICIES,
                line,
                "empty_range",
                f"effective_from {r['effective_from']} is not before effective_to {r['effective_to']}",
                "effective_to is exclusive and must be later",
            )


@rule(POLICIES)
def policy_ranges(folder: Folder) -> Iterator[Finding]:
    """No overlap per scope and stage; a gap in a default ('*') policy is an error, in an override a warning."""
    yield from ranges(
        folder, POLICIES, policy_spans(folder), "policy range", gap_is_error=lambda k: k[:4] == ("*", "*", "*", "*")
    )


@rule(POLICIES)
def policy_defaults(folder: Folder) -> Iterator[Finding]:
    groups = policy_spans(folder)
    for stage in STAGES:
        if ("*", "*", "*", "*", stage) not in groups and folder.rows(POLICIES):
            yield folder.error(
                POLICIES,
                1,
                "missing_default_policy",
                f"no default ('*') policy for stage {stage}",
                f"add a row with tenant/warehouse/carrier/service '*' for stage {stage}",
            )


# -- rate_cards.csv -----------------------------------------------------------------------------------------


@rule(CARDS)
def rate_card_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, CARDS, ("rate_card_id", "rate_card_version", "charge_code", "tier_min"))


@rule(CARDS)
def rate_card_tenant(folder: Folder) -> Iterator[Finding]:
    """The tenant exists and the card bills in the tenant's currency."""
    currency = folder.tenant_currency()
    for line, r in folder.rows(CARDS):
        if r["tenant_id"] not in currency:
            yield unknown_tenant(folder, CARDS, line, r["tenant_id"])
        elif r["currency"] != currency[r["tenant_id"]]:
            yield folder.error(
                CARDS,
                line,
                "currency_mismatch",
                f"currency {r['currency']} differs from tenant {r['tenant_id']}'s currency {currency[r['tenant_id']]}",
                f"bill tenant {r['tenant_id']} in {currency[r['tenant_id']]}",
            )


@rule(CARDS)
def rate_card_charge_code(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(CARDS):
        if r["charge_code"] not in CHARGE_CODES:
            yield folder.error(
                CARDS,
                line,
                "unknown_charge_code",
                f"charge_code {r['charge_code']!r}",
                f"use one of {', '.join(CHARGE_CODES)}",
            )


@rule(CARDS)
def rate_card_amounts(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(CARDS):
        for column in ("rate", "markup_pct", "minimum_amount"):
            value = folder.number(CARDS, line, column, r[column])
            if value is not None and value < 0:
                yield folder.error(
                    CARDS,
                    line,
                    "negative_rate",
                    f"{column} {r[column]} is negative",
                    "rates, markups and minimums are 0 or more; credits belong in sla_credit_terms.csv",
                )


@rule(CARDS)
def rate_card_missing_rate(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(CARDS):
        if r["charge_code"] != "MONTHLY_MINIMUM" and r["rate"] == "":
            yield folder.error(CARDS, line, "missing_rate", f"{r['charge_code']} has no rate", "fill the rate column")


def tier_bounds(folder: Folder, line: int, r: dict[str, str]) -> tuple[Decimal | None, Decimal | None]:
    low = folder.number(CARDS, line, "tier_min", r["tier_min"], integer=True)
    high = folder.number(CARDS, line, "tier_max", r["tier_max"], integer=True)
    return low, high


@rule(CARDS)
def rate_card_tier_bounds(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(CARDS):
        low, high = tier_bounds(folder, line, r)
        if low is not None and high is not None and high < low:
            yield folder.error(
                CARDS,
                line,
                "inverted_tier",
                f"tier_max {high} is below tier_min {low}",
                "swap tier_min and tier_max",
            )


def card_range(folder: Folder, line: int, r: dict[str, str]) -> tuple[date | None, date | None]:
    start = folder.day(CARDS, line, "effective_from", r["effective_from"])
    end = folder.day(CARDS, line, "effective_to", r["effective_to"])
    return start, end


@rule(CARDS)
def rate_card_effective_range(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(CARDS):
        start, end = card_range(folder, line, r)
        if start and end and start >= end:
            yield folder.error(
                CARDS,
                line,
                "empty_range",
                "effective_from is not before effective_to",
                "effective_to is exclusive and must be later",
            )


@rule(CARDS)
def rate_card_ranges(folder: Folder) -> Iterator[Finding]:
    """The versions of a tenant's charge code do not overlap (a version's tiers count once)."""
    versions: dict[tuple, dict[tuple, tuple]] = {}
    for line, r in folder.rows(CARDS):
        start, end = card_range(folder, line, r)
        if start and end and start < end:
            group = versions.setdefault((r["tenant_id"], r["charge_code"]), {})
            group.setdefault((r["rate_card_id"], r["rate_card_version"], start, end), (line, start, end))
    yield from ranges(folder, CARDS, {k: list(v.values()) for k, v in versions.items()}, "rate card range")


@rule(CARDS)
def rate_card_tiers(folder: Folder) -> Iterator[Finding]:
    """The tiers of a card's charge code neither overlap nor leave quantities out."""
    tiers: dict[tuple, list] = {}
    for line, r in folder.rows(CARDS):
        low, high = tier_bounds(folder, line, r)
        if low is not None:
            tiers.setdefault((r["rate_card_id"], r["rate_card_version"], r["charge_code"]), []).append(
                (line, low, high)
            )
    for key, items in tiers.items():
        items.sort(key=lambda i: i[1])
        for (line_a, _, high_a), (line_b, low_b, _) in itertools.pairwise(items):
            if high_a is None or low_b <= high_a:
                yield folder.error(
                    CARDS,
                    line_b,
                    "overlapping_tiers",
                    f"tier from {low_b} overlaps the tier on line {line_a} ({key[2]}, {key[0]} v{key[1]})",
                    f"set tier_max on line {line_a} to {low_b - 1}",
                )
            elif low_b > high_a + 1:
                yield folder.warning(
                    CARDS,
                    line_b,
                    "gapped_tiers",
                    f"quantities {high_a + 1}–{low_b - 1} fall in no tier",
                    f"start this tier at {high_a + 1}",
                )


# -- sla_credit_terms.csv -----------------------------------------------------------------------------------


@rule(TERMS)
def credit_terms_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, TERMS, ("tenant_id", "terms_version", "stage"))


@rule(TERMS)
def credit_terms_tenant(folder: Folder) -> Iterator[Finding]:
    tenant_ids = folder.column(TENANTS, "tenant_id")
    for line, r in folder.rows(TERMS):
        if r["tenant_id"] not in tenant_ids:
            yield unknown_tenant(folder, TERMS, line, r["tenant_id"])


@rule(TERMS)
def credit_terms_stage(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TERMS):
        if r["stage"] not in STAGES:
            yield folder.error(TERMS, line, "unknown_stage", f"stage {r['stage']!r}", f"use one of {', '.join(STAGES)}")


@rule(TERMS)
def credit_terms_value(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TERMS):
        value = folder.number(TERMS, line, "credit_value", r["credit_value"])
        if value is None or value <= 0:
            yield folder.error(
                TERMS,
                line,
                "non_positive_credit",
                f"credit_value {r['credit_value'] or '(empty)'}",
                "credits are written as positive amounts or percentages; the sign is applied on the invoice",
            )


@rule(TERMS)
def credit_terms_cap(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TERMS):
        cap = folder.number(TERMS, line, "cap_pct_of_subtotal", r["cap_pct_of_subtotal"])
        if cap is not None and not (0 <= cap <= 100):
            yield folder.error(
                TERMS,
                line,
                "invalid_cap",
                f"cap_pct_of_subtotal {cap} is outside 0–100",
                "give a percentage between 0 and 100, or leave it empty for no cap",
            )


@rule(TERMS)
def credit_terms_basis(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(TERMS):
        if r["credit_type"] == "percent_of_charge" and r["basis_charge_code"] not in METERED_CHARGE_CODES:
            yield folder.error(
                TERMS,
                line,
                "unknown_reference",
                f"basis_charge_code {r['basis_charge_code']!r}",
                f"use one of {', '.join(METERED_CHARGE_CODES)}",
            )


@rule(TERMS)
def credit_terms_ranges(folder: Folder) -> Iterator[Finding]:
    """A tenant's terms for a stage do not overlap (a row whose range is empty is left out)."""
    spans: dict[tuple, list] = {}
    for line, r in folder.rows(TERMS):
        start = folder.day(TERMS, line, "effective_from", r["effective_from"])
        end = folder.day(TERMS, line, "effective_to", r["effective_to"])
        if start and end and start < end:
            spans.setdefault((r["tenant_id"], r["stage"]), []).append((line, start, end))
    yield from ranges(folder, TERMS, spans, "credit terms range")


# -- reason_codes.csv, shopify_locations.csv ----------------------------------------------------------------


@rule(REASONS)
def reason_unique(folder: Folder) -> Iterator[Finding]:
    yield from duplicates(folder, REASONS, ("reason_code",))


@rule(REASONS)
def reason_stage(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(REASONS):
        if r["stage"] not in (*STAGES, "*"):
            yield folder.error(REASONS, line, "unknown_stage", f"stage {r['stage']!r}", "use a stage or '*'")


@rule(REASONS)
def reason_code_format(folder: Folder) -> Iterator[Finding]:
    for line, r in folder.rows(REASONS):
        if not re.fullmatch(r"[A-Z][A-Z_]*", r["reason_code"]):
            yield folder.error(
                REASONS, line, "invalid_reason_code", f"reason_code {r['reason_code']!r}", "use UPPER_SNAKE_CASE"
            )


@rule(LOCATIONS)
def location_references(folder: Folder) -> Iterator[Finding]:
    tenant_ids = folder.column(TENANTS, "tenant_id")
    warehouse_ids = folder.column(WAREHOUSES, "warehouse_id")
    for line, r in folder.rows(LOCATIONS):
        if r["tenant_id"] not in tenant_ids:
            yield unknown_tenant(folder, LOCATIONS, line, r["tenant_id"])
        if r["warehouse_id"] not in warehouse_ids:
            yield folder.error(
                LOCATIONS,
                line,
                "unknown_reference",
                f"warehouse_id {r['warehouse_id']!r} is not in warehouses.csv",
                "fix the warehouse id or add the warehouse",
            )
