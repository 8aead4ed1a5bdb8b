"""Policy lint: deterministic checks of the reference data in ``seeds/``, each finding with file, line and a
fix hint.

dbt's seed tests say *that* a table is wrong once it is loaded; the lint says *where* (file:line) and *how to
fix it*, before anything is loaded, and also covers what SQL tests express poorly (gaps between effective
ranges, time zones, holiday calendars, cutoffs inside opening hours)."""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from e2a_dagster.lib.reference import is_open
from e2a_dagster.lib.settings import reference_dir
from e2a_dagster.lib.vocabulary import SLA_STAGES

STAGES = SLA_STAGES
RULE_FOR_STAGE = {"pick": "duration", "pack": "duration", "ship": "cutoff", "deliver": "transit_days"}
CHARGE_CODES = ("ORDER_FEE", "PICK_UNIT", "PACK_CARTON", "SHIPPING", "RETURN_FEE", "MONTHLY_MINIMUM")
OPEN_END_DATE = date(9999, 12, 31)


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


class _Lint:
    def __init__(self, seeds_dir: Path):
        self.dir = seeds_dir
        self.findings: list[Finding] = []
        self.label = seeds_dir.name  # "seeds/<file>" for the default folder

    def path(self, name: str) -> str:
        return f"{self.label}/{name}"

    def add(self, severity: str, name: str, line: int, code: str, message: str, hint: str) -> None:
        self.findings.append(Finding(severity, self.path(name), line, code, message, hint))

    def error(self, name: str, line: int, code: str, message: str, hint: str) -> None:
        self.add("error", name, line, code, message, hint)

    def warning(self, name: str, line: int, code: str, message: str, hint: str) -> None:
        self.add("warning", name, line, code, message, hint)

    def rows(self, name: str, required: Iterable[str]) -> list[Row]:
        path = self.dir / name
        if not path.exists():
            self.error(name, 1, "missing_file", f"{name} does not exist", f"restore {name} from the repository")
            return []
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                self.error(
                    name,
                    1,
                    "missing_column",
                    f"columns missing: {', '.join(missing)}",
                    "add the columns to the header line",
                )
                return []
            return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]

    # -- parsers that report instead of raising ------------------------------------------------------------

    def number(self, name: str, line: int, column: str, value: str, *, integer: bool = False) -> Decimal | None:
        if value == "":
            return None
        try:
            number = Decimal(value)
            if integer and number != number.to_integral():
                raise InvalidOperation
            return number
        except InvalidOperation:
            kind = "an integer" if integer else "a decimal number"
            self.error(
                name,
                line,
                "invalid_number",
                f"{column} = {value!r} is not {kind}",
                f"write {column} as {kind} (e.g. 120)",
            )
            return None

    def clock(self, name: str, line: int, column: str, value: str) -> time | None:
        try:
            return time.fromisoformat(value)
        except ValueError:
            self.error(
                name,
                line,
                "invalid_time",
                f"{column} = {value!r} is not a time of day",
                f"write {column} as HH:MM, 24-hour local time",
            )
            return None

    def day(self, name: str, line: int, column: str, value: str) -> date | None:
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(
                name,
                line,
                "invalid_date",
                f"{column} = {value!r} is not a date",
                f"write {column} as YYYY-MM-DD (open-ended: 9999-12-31)",
            )
            return None

    def instant(self, name: str, line: int, column: str, value: str) -> datetime | None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            self.error(
                name,
                line,
                "invalid_timestamp",
                f"{column} = {value!r} is not a timestamp with offset",
                f"write {column} as ISO-8601 with a UTC offset, e.g. 2026-06-01T00:00:00-04:00",
            )
            return None
        return parsed

    def zone(self, name: str, line: int, column: str, value: str) -> bool:
        try:
            ZoneInfo(value)
            return True
        except (ZoneInfoNotFoundError, ValueError):
            self.error(
                name,
                line,
                "invalid_time_zone",
                f"{column} = {value!r} is not an IANA time zone",
                "use an IANA name such as America/New_York or Europe/Berlin",
            )
            return False

    def duplicates(self, name: str, rows: list[Row], key: tuple[str, ...]) -> None:
        seen: dict[tuple, int] = {}
        for line, row in rows:
            k = tuple(row.get(c, "") for c in key)
            if k in seen:
                self.error(
                    name,
                    line,
                    "duplicate_key",
                    f"{'/'.join(key)} = {'/'.join(k)} repeats line {seen[k]}",
                    "delete one of the two rows or give this one a new version",
                )
            else:
                seen[k] = line

    def ranges(
        self,
        name: str,
        groups: dict[tuple, list[tuple[int, object, object]]],
        what: str,
        *,
        gap_is_error: Callable[[tuple], bool] | None = None,
    ) -> None:
        """Half-open effective ranges [from, to) per group: overlaps are errors, gaps warnings (or errors)."""
        for key, items in groups.items():
            items = sorted(items, key=lambda i: (i[1], i[0]))
            for (line_a, _, to_a), (line_b, from_b, _) in itertools.pairwise(items):
                scope = ", ".join(str(k) for k in key)
                if from_b < to_a:
                    self.error(
                        name,
                        line_b,
                        "overlapping_range",
                        f"{what} ({scope}) starts before the range on line {line_a} ends ({to_a})",
                        f"end line {line_a} at {from_b} (effective_to is exclusive) or start this row at {to_a}",
                    )
                elif from_b > to_a:
                    severity = "error" if gap_is_error and gap_is_error(key) else "warning"
                    self.add(
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


def lint_seeds(seeds_dir: Path | None = None) -> list[Finding]:
    """Every finding in the reference data of ``seeds_dir``, errors first, then by file and line."""
    seeds_dir = seeds_dir or reference_dir()
    lint = _Lint(seeds_dir)

    # tenants ------------------------------------------------------------------------------------------------
    tenants = lint.rows("tenants.csv", ("tenant_id", "currency", "time_zone", "default_warehouse_id"))
    warehouses = lint.rows(
        "warehouses.csv",
        (
            "warehouse_id",
            "time_zone",
            "country",
            "subdivision",
            "open_time",
            "close_time",
            "cutoff_time",
            "working_days",
        ),
    )
    warehouse_ids = {r["warehouse_id"] for _, r in warehouses}
    tenant_currency = {r["tenant_id"]: r["currency"] for _, r in tenants}
    lint.duplicates("tenants.csv", tenants, ("tenant_id",))
    for line, r in tenants:
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", r["tenant_id"]):
            lint.error(
                "tenants.csv",
                line,
                "invalid_tenant_id",
                f"tenant_id {r['tenant_id']!r} is not [a-z0-9_-]",
                "use lower-case letters, digits, '_' or '-'",
            )
        lint.zone("tenants.csv", line, "time_zone", r["time_zone"])
        if not is_iso_currency(r["currency"]):
            lint.error(
                "tenants.csv",
                line,
                "invalid_currency",
                f"currency {r['currency']!r} is not ISO 4217",
                "use a three-letter code such as USD or EUR",
            )
        if r["default_warehouse_id"] not in warehouse_ids:
            lint.error(
                "tenants.csv",
                line,
                "unknown_reference",
                f"default_warehouse_id {r['default_warehouse_id']!r} is not in warehouses.csv",
                "add the warehouse to warehouses.csv or fix the id",
            )
        # Approval settings (lib/invoicing.py): optional; empty = no auto-approval / the run guard's defaults.
        for column, integer in (
            ("auto_approve_limit", False),
            ("auto_approve_max_per_run", True),
            ("auto_approve_max_amount_per_run", False),
        ):
            value = lint.number("tenants.csv", line, column, (r.get(column) or "").strip(), integer=integer)
            if value is not None and value < 0:
                lint.error(
                    "tenants.csv",
                    line,
                    "negative_limit",
                    f"{column} {value} is negative",
                    f"write {column} as 0 or more (empty = the default)",
                )

    # warehouses ---------------------------------------------------------------------------------------------
    lint.duplicates("warehouses.csv", warehouses, ("warehouse_id",))
    hours: dict[str, tuple[time, time]] = {}
    for line, r in warehouses:
        name = "warehouses.csv"
        lint.zone(name, line, "time_zone", r["time_zone"])
        try:
            holidays_lib.country_holidays(r["country"], subdiv=r["subdivision"] or None, years=2026)
        except (NotImplementedError, KeyError, ValueError) as exc:
            lint.error(
                name,
                line,
                "unknown_holiday_calendar",
                f"no holiday calendar for country {r['country']!r} / subdivision {r['subdivision']!r} ({exc})",
                "use an ISO 3166 country and a subdivision the `holidays` library knows, or leave the "
                "subdivision empty",
            )
        opens, closes, cutoff = (lint.clock(name, line, c, r[c]) for c in ("open_time", "close_time", "cutoff_time"))
        if opens and closes and opens >= closes:
            lint.error(
                name,
                line,
                "inverted_opening_hours",
                f"open_time {r['open_time']} is not before close_time {r['close_time']}",
                "swap the two times (overnight shifts are not supported)",
            )
        elif opens and closes:
            hours[r["warehouse_id"]] = (opens, closes)
            if cutoff and not (opens < cutoff <= closes):
                lint.error(
                    name,
                    line,
                    "cutoff_outside_opening_hours",
                    f"cutoff_time {r['cutoff_time']} is outside opening hours {r['open_time']}–{r['close_time']}",
                    "set cutoff_time after open_time and no later than close_time",
                )
        if not re.fullmatch(r"[1-7](\|[1-7])*", r["working_days"]):
            lint.error(
                name,
                line,
                "invalid_working_days",
                f"working_days {r['working_days']!r} is not a list of ISO weekdays",
                "write e.g. 1|2|3|4|5 (1 = Monday … 7 = Sunday)",
            )

    # calendar exceptions ------------------------------------------------------------------------------------
    name = "calendar_exceptions.csv"
    closures = lint.rows(name, ("warehouse_id", "local_date", "is_open", "open_time", "close_time"))
    lint.duplicates(name, closures, ("warehouse_id", "local_date"))
    for line, r in closures:
        if r["warehouse_id"] not in warehouse_ids:
            lint.error(
                name,
                line,
                "unknown_reference",
                f"warehouse_id {r['warehouse_id']!r} is not in warehouses.csv",
                "fix the id or add the warehouse",
            )
        lint.day(name, line, "local_date", r["local_date"])
        try:
            opening = is_open(r)
        except ValueError:
            lint.error(
                name,
                line,
                "invalid_boolean",
                f"is_open {r['is_open']!r} is not true/false",
                "write true or false",
            )
            continue
        if opening:
            opens = lint.clock(name, line, "open_time", r["open_time"]) if r["open_time"] else None
            closes = lint.clock(name, line, "close_time", r["close_time"]) if r["close_time"] else None
            if opens is None or closes is None or opens >= closes:
                lint.error(
                    name,
                    line,
                    "invalid_opening_hours",
                    "an opening needs open_time before close_time",
                    "fill open_time and close_time (HH:MM), open before close",
                )
        elif r["open_time"] or r["close_time"]:
            lint.error(
                name,
                line,
                "hours_on_closed_day",
                "a closure has opening hours",
                "leave open_time and close_time empty when is_open is false",
            )

    # carrier services ---------------------------------------------------------------------------------------
    name = "carrier_services.csv"
    services = lint.rows(name, ("carrier", "service_level", "transit_days"))
    lint.duplicates(name, services, ("carrier", "service_level"))
    carriers = {r["carrier"] for _, r in services}
    levels = {r["service_level"] for _, r in services}
    for line, r in services:
        days = lint.number(name, line, "transit_days", r["transit_days"], integer=True)
        if days is not None and days < 1:
            lint.error(
                name,
                line,
                "non_positive_transit_days",
                f"transit_days {r['transit_days']} is below 1",
                "transit days count carrier business days: 1 or more",
            )
        if r["service_level"] in ("", "*") or r["service_level"] != r["service_level"].lower():
            lint.error(
                name,
                line,
                "invalid_service_level",
                f"service_level {r['service_level']!r}",
                "use a lower-case service level (ground, express, overnight)",
            )

    # SLA policies -------------------------------------------------------------------------------------------
    name = "sla_policies.csv"
    policies = lint.rows(
        name,
        (
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
    )
    lint.duplicates(name, policies, ("policy_id", "policy_version"))
    groups: dict[tuple, list] = {}
    for line, r in policies:
        for column, known, where in (
            ("tenant_id", set(tenant_currency), "tenants.csv"),
            ("warehouse_id", warehouse_ids, "warehouses.csv"),
            ("carrier", carriers, "carrier_services.csv"),
            ("service_level", levels, "carrier_services.csv"),
        ):
            if r[column] != "*" and r[column] not in known:
                lint.error(
                    name,
                    line,
                    "unknown_reference",
                    f"{column} {r[column]!r} is not in {where}",
                    f"use '*' or a {column} listed in {where}",
                )
        stage = r["stage"]
        if stage not in STAGES:
            lint.error(name, line, "unknown_stage", f"stage {stage!r}", f"use one of {', '.join(STAGES)}")
        elif r["rule"] != RULE_FOR_STAGE[stage]:
            lint.error(
                name,
                line,
                "rule_does_not_fit_stage",
                f"stage {stage} with rule {r['rule']!r}",
                f"stage {stage} uses rule {RULE_FOR_STAGE[stage]}",
            )
        allowance = lint.number(name, line, "allowance_minutes", r["allowance_minutes"], integer=True)
        if r["rule"] == "duration" and (allowance is None or allowance <= 0):
            lint.error(
                name,
                line,
                "non_positive_allowance",
                f"allowance_minutes {r['allowance_minutes'] or '(empty)'} for a duration rule",
                "give a positive number of business minutes",
            )
        at_risk = lint.number(name, line, "at_risk_minutes", r["at_risk_minutes"], integer=True)
        if at_risk is None or at_risk < 0:
            lint.error(
                name,
                line,
                "invalid_at_risk_minutes",
                f"at_risk_minutes {r['at_risk_minutes'] or '(empty)'}",
                "give 0 or more minutes",
            )
        major = lint.number(name, line, "major_after_minutes", r["major_after_minutes"], integer=True)
        critical = lint.number(name, line, "critical_after_minutes", r["critical_after_minutes"], integer=True)
        if major is not None and critical is not None:
            if major < 0 or critical < 0:
                lint.error(
                    name,
                    line,
                    "negative_threshold",
                    "severity thresholds must not be negative",
                    "use 0 or more minutes",
                )
            elif major >= critical:
                lint.error(
                    name,
                    line,
                    "inverted_severity_thresholds",
                    f"major_after_minutes {major} is not below critical_after_minutes {critical}",
                    "major must start before critical: swap the two values",
                )
        start = lint.instant(name, line, "effective_from", r["effective_from"])
        end = lint.instant(name, line, "effective_to", r["effective_to"])
        if start and end:
            if start >= end:
                lint.error(
                    name,
                    line,
                    "empty_range",
                    f"effective_from {r['effective_from']} is not before effective_to {r['effective_to']}",
                    "effective_to is exclusive and must be later",
                )
                continue
            key = (r["tenant_id"], r["warehouse_id"], r["carrier"], r["service_level"], stage)
            groups.setdefault(key, []).append((line, start, end))
    lint.ranges(name, groups, "policy range", gap_is_error=lambda k: k[:4] == ("*", "*", "*", "*"))
    for stage in STAGES:
        if ("*", "*", "*", "*", stage) not in groups and policies:
            lint.error(
                name,
                1,
                "missing_default_policy",
                f"no default ('*') policy for stage {stage}",
                f"add a row with tenant/warehouse/carrier/service '*' for stage {stage}",
            )

    # rate cards ---------------------------------------------------------------------------------------------
    name = "rate_cards.csv"
    cards = lint.rows(
        name,
        (
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
    )
    lint.duplicates(name, cards, ("rate_card_id", "rate_card_version", "charge_code", "tier_min"))
    versions: dict[tuple, dict[tuple, tuple]] = {}
    tiers: dict[tuple, list] = {}
    for line, r in cards:
        if r["tenant_id"] not in tenant_currency:
            lint.error(
                name,
                line,
                "unknown_reference",
                f"tenant_id {r['tenant_id']!r} is not in tenants.csv",
                "fix the tenant id or add the tenant",
            )
        elif r["currency"] != tenant_currency[r["tenant_id"]]:
            lint.error(
                name,
                line,
                "currency_mismatch",
                f"currency {r['currency']} differs from tenant "
                f"{r['tenant_id']}'s currency {tenant_currency[r['tenant_id']]}",
                f"bill tenant {r['tenant_id']} in {tenant_currency[r['tenant_id']]}",
            )
        if r["charge_code"] not in CHARGE_CODES:
            lint.error(
                name,
                line,
                "unknown_charge_code",
                f"charge_code {r['charge_code']!r}",
                f"use one of {', '.join(CHARGE_CODES)}",
            )
        for column in ("rate", "markup_pct", "minimum_amount"):
            value = lint.number(name, line, column, r[column])
            if value is not None and value < 0:
                lint.error(
                    name,
                    line,
                    "negative_rate",
                    f"{column} {r[column]} is negative",
                    "rates, markups and minimums are 0 or more; credits belong in sla_credit_terms.csv",
                )
        if r["charge_code"] != "MONTHLY_MINIMUM" and r["rate"] == "":
            lint.error(name, line, "missing_rate", f"{r['charge_code']} has no rate", "fill the rate column")
        low = lint.number(name, line, "tier_min", r["tier_min"], integer=True)
        high = lint.number(name, line, "tier_max", r["tier_max"], integer=True)
        if low is not None and high is not None and high < low:
            lint.error(
                name,
                line,
                "inverted_tier",
                f"tier_max {high} is below tier_min {low}",
                "swap tier_min and tier_max",
            )
        start = lint.day(name, line, "effective_from", r["effective_from"])
        end = lint.day(name, line, "effective_to", r["effective_to"])
        if start and end and start >= end:
            lint.error(
                name,
                line,
                "empty_range",
                "effective_from is not before effective_to",
                "effective_to is exclusive and must be later",
            )
        elif start and end:
            group = versions.setdefault((r["tenant_id"], r["charge_code"]), {})
            group.setdefault((r["rate_card_id"], r["rate_card_version"], start, end), (line, start, end))
        if low is not None:
            tiers.setdefault((r["rate_card_id"], r["rate_card_version"], r["charge_code"]), []).append(
                (line, low, high)
            )
    lint.ranges(name, {k: list(v.values()) for k, v in versions.items()}, "rate card range")
    for key, items in tiers.items():
        items.sort(key=lambda i: i[1])
        for (line_a, _, high_a), (line_b, low_b, _) in itertools.pairwise(items):
            if high_a is None or low_b <= high_a:
                lint.error(
                    name,
                    line_b,
                    "overlapping_tiers",
                    f"tier from {low_b} overlaps the tier on line {line_a} ({key[2]}, {key[0]} v{key[1]})",
                    f"set tier_max on line {line_a} to {low_b - 1}",
                )
            elif low_b > high_a + 1:
                lint.warning(
                    name,
                    line_b,
                    "gapped_tiers",
                    f"quantities {high_a + 1}–{low_b - 1} fall in no tier",
                    f"start this tier at {high_a + 1}",
                )

    # SLA credit terms ---------------------------------------------------------------------------------------
    name = "sla_credit_terms.csv"
    terms = lint.rows(
        name,
        (
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
    )
    lint.duplicates(name, terms, ("tenant_id", "terms_version", "stage"))
    term_ranges: dict[tuple, list] = {}
    for line, r in terms:
        if r["tenant_id"] not in tenant_currency:
            lint.error(
                name,
                line,
                "unknown_reference",
                f"tenant_id {r['tenant_id']!r} is not in tenants.csv",
                "fix the tenant id or add the tenant",
            )
        if r["stage"] not in STAGES:
            lint.error(name, line, "unknown_stage", f"stage {r['stage']!r}", f"use one of {', '.join(STAGES)}")
        value = lint.number(name, line, "credit_value", r["credit_value"])
        if value is None or value <= 0:
            lint.error(
                name,
                line,
                "non_positive_credit",
                f"credit_value {r['credit_value'] or '(empty)'}",
                "credits are written as positive amounts or percentages; the sign is applied on the invoice",
            )
        cap = lint.number(name, line, "cap_pct_of_subtotal", r["cap_pct_of_subtotal"])
        if cap is not None and not (0 <= cap <= 100):
            lint.error(
                name,
                line,
                "invalid_cap",
                f"cap_pct_of_subtotal {cap} is outside 0–100",
                "give a percentage between 0 and 100, or leave it empty for no cap",
            )
        if r["credit_type"] == "percent_of_charge" and r["basis_charge_code"] not in CHARGE_CODES:
            lint.error(
                name,
                line,
                "unknown_reference",
                f"basis_charge_code {r['basis_charge_code']!r}",
                f"use one of {', '.join(CHARGE_CODES[:-1])}",
            )
        start = lint.day(name, line, "effective_from", r["effective_from"])
        end = lint.day(name, line, "effective_to", r["effective_to"])
        if start and end and start < end:
            term_ranges.setdefault((r["tenant_id"], r["stage"]), []).append((line, start, end))
    lint.ranges(name, term_ranges, "credit terms range")

    # reason codes, Shopify locations ------------------------------------------------------------------------
    name = "reason_codes.csv"
    reasons = lint.rows(name, ("reason_code", "stage", "label"))
    lint.duplicates(name, reasons, ("reason_code",))
    for line, r in reasons:
        if r["stage"] not in (*STAGES, "*"):
            lint.error(name, line, "unknown_stage", f"stage {r['stage']!r}", "use a stage or '*'")
        if not re.fullmatch(r"[A-Z][A-Z_]*", r["reason_code"]):
            lint.error(name, line, "invalid_reason_code", f"reason_code {r['reason_code']!r}", "use UPPER_SNAKE_CASE")
    name = "shopify_locations.csv"
    for line, r in lint.rows(name, ("tenant_id", "location_id", "warehouse_id")):
        if r["tenant_id"] not in tenant_currency:
            lint.error(
                name,
                line,
                "unknown_reference",
                f"tenant_id {r['tenant_id']!r} is not in tenants.csv",
                "fix the tenant id or add the tenant",
            )
        if r["warehouse_id"] not in warehouse_ids:
            lint.error(
                name,
                line,
                "unknown_reference",
                f"warehouse_id {r['warehouse_id']!r} is not in warehouses.csv",
                "fix the warehouse id or add the warehouse",
            )

    order = {"error": 0, "warning": 1}
    return sorted(lint.findings, key=lambda f: (order[f.severity], f.file, f.line, f.code))


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
