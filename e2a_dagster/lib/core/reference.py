"""Reference data read straight from the reference folder (``E2A_REFERENCE_DIR``, else ``seeds/``: the same
CSV files dbt seeds), for validation at ingestion.

Reading the files rather than the seeded tables means a fixed seed (say, a new tenant) is seen by the next
ingestion or ``e2a dlq replay`` even before ``dbt seed`` ran again."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from e2a_dagster.lib.core.settings import reference_dir


def reference_rows(name: str, folder: Path | None = None) -> list[dict[str, str]]:
    """The rows of one reference CSV (``tenants.csv``, ...) in ``folder`` (default: ``E2A_REFERENCE_DIR``, else
    the repository's ``seeds/``), every cell stripped. The one reader of the files dbt seeds: the SLA calendar,
    the narratives, the simulator and the test oracles all read them here (``lint`` reads them its own way, with
    line numbers for its findings; ``dbt seed`` loads them into ``reference.*``)."""
    with ((folder or reference_dir()) / name).open(newline="", encoding="utf-8") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def is_open(exception: dict[str, str | bool]) -> bool:
    """``is_open`` of a ``calendar_exceptions.csv`` row: ``true`` (an opening) or ``false`` (a closure), in any
    case, as ``e2a lint`` demands; anything else is an error, never a guess. The one reading of the column (the
    business calendar, the narratives, the simulator's oracle and lint all ask here)."""
    value = exception["is_open"]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"calendar_exceptions.csv: is_open {value!r} is not true/false")
    return text == "true"


@dataclass(frozen=True)
class Reference:
    tenants: dict[str, dict[str, str]]
    warehouses: dict[str, dict[str, str]]
    service_levels: frozenset[str]

    @classmethod
    def load(cls, seeds_dir: Path | None = None) -> Reference:
        seeds_dir = seeds_dir or reference_dir()
        tenants = {row["tenant_id"]: row for row in reference_rows("tenants.csv", seeds_dir)}
        warehouses = {row["warehouse_id"]: row for row in reference_rows("warehouses.csv", seeds_dir)}
        levels = frozenset(row["service_level"].lower() for row in reference_rows("carrier_services.csv", seeds_dir))
        return cls(tenants=tenants, warehouses=warehouses, service_levels=levels)

    def default_warehouse(self, tenant_id: str) -> str | None:
        tenant = self.tenants.get(tenant_id)
        return tenant.get("default_warehouse_id") if tenant else None


def seeds_version(names: Iterable[str] | None = None, *, salt: str = "", seeds_dir: Path | None = None) -> str:
    """A short hash of the reference files ``names`` (every CSV when None) and ``salt``: the code version of an
    asset computed from them, so editing a file makes it stale (and rebuilt by its automation condition)."""
    seeds_dir = seeds_dir or reference_dir()
    digest = hashlib.sha256(salt.encode())
    paths = [seeds_dir / n for n in names] if names is not None else sorted(seeds_dir.glob("*.csv"))
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


REFERENCE_FILES = (
    "tenants.csv",
    "warehouses.csv",
    "calendar_exceptions.csv",
    "sla_policies.csv",
    "carrier_services.csv",
    "rate_cards.csv",
    "sla_credit_terms.csv",
    "reason_codes.csv",
    "shopify_locations.csv",
)

STARTER_README = """\
# E²A reference data

This folder is your own reference data: point E²A at it with `E2A_REFERENCE_DIR={folder}`. It holds the same
CSV files, with the same names and columns, as the demo data in E²A's repository (`seeds/`); it started as a copy
of that demo (two tenants, `acme` and `globex`). Edit the files, then run `e2a lint` (every finding names file,
line and a fix) and `e2a run`: the next run loads the changed files and recomputes the SLA evaluations they
affect. Column meanings: `dbt_project/models/reference/_seeds.yml` in E²A's repository.

What to change, file by file:

- `tenants.csv` (one row per client): `tenant_id` (`[a-z0-9_-]`), ISO 4217 `currency`, IANA `time_zone`,
  default warehouse, reconciliation tolerance, auto-approval limits.
- `warehouses.csv` (one row per site): IANA `time_zone`; `country` / `subdivision` as the `holidays` library
  names them (`JP`, `US` / `NJ`, `DE` / `BE`, ...); opening, closing and cutoff times; `working_days` as ISO
  weekdays (`1|2|3|4|5|6` = Monday to Saturday).
- `calendar_exceptions.csv`: closures (`is_open=false`) and days you open although the holidays close them.
- `sla_policies.csv`: allowances per stage (`*` = any tenant, warehouse, carrier, service level), at-risk and
  severity thresholds, effective ranges; keep a `*` default for every stage.
- `carrier_services.csv`: the transit days of each service your carriers sell.
- `rate_cards.csv`: each client's contract: rates, tiers, shipping markup, monthly minimum, the tenant's
  currency, effective ranges.
- `sla_credit_terms.csv`: SLA credits owed per late stage and their cap (delete the rows you do not contract).
- `reason_codes.csv`: exception reasons shown in narratives.
- `shopify_locations.csv`: which warehouse each Shopify fulfillment location is.

Delete the demo tenants `acme` and `globex` (and every row naming them or their warehouses `NJ1`, `BER1`) once your
own are in.
"""


class ReferenceError(ValueError):
    """The reference folder cannot be used (missing, or not a folder); the message says which path."""


def write_starter(folder: Path, source: Path | None = None) -> list[Path]:
    """Write a starter reference folder: a copy of the demo CSV files and a README on what to change. Refuses a
    folder that already holds any of the files (nothing is overwritten). Returns the files written."""
    source = source or reference_dir()
    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ReferenceError(f"{folder} exists and is not a folder")
    clash = [name for name in (*REFERENCE_FILES, "README.md") if (folder / name).exists()]
    if clash:
        raise ReferenceError(f"{folder} already holds {', '.join(clash)}: choose an empty or new folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in REFERENCE_FILES:
        target = folder / name
        target.write_bytes((source / name).read_bytes())
        written.append(target)
    readme = folder / "README.md"
    readme.write_text(STARTER_README.replace("{folder}", str(folder)), encoding="utf-8")
    written.append(readme)
    return written
