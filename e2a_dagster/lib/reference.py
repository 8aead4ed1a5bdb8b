"""Reference data read straight from ``seeds/`` (the same CSV files dbt seeds), for validation at ingestion.

Reading the files rather than the seeded tables means a fixed seed (say, a new tenant) is seen by the next
ingestion or ``e2a dlq replay`` even before ``dbt seed`` ran again."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from e2a_dagster.lib.settings import SEEDS_DIR


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


@dataclass(frozen=True)
class Reference:
    tenants: dict[str, dict[str, str]]
    warehouses: dict[str, dict[str, str]]
    service_levels: frozenset[str]

    @classmethod
    def load(cls, seeds_dir: Path = SEEDS_DIR) -> Reference:
        tenants = {row["tenant_id"]: row for row in _rows(seeds_dir / "tenants.csv")}
        warehouses = {row["warehouse_id"]: row for row in _rows(seeds_dir / "warehouses.csv")}
        levels = frozenset(row["service_level"].lower() for row in _rows(seeds_dir / "carrier_services.csv"))
        return cls(tenants=tenants, warehouses=warehouses, service_levels=levels)

    def default_warehouse(self, tenant_id: str) -> str | None:
        tenant = self.tenants.get(tenant_id)
        return tenant.get("default_warehouse_id") if tenant else None


def seeds_version(names: Iterable[str] | None = None, *, salt: str = "", seeds_dir: Path = SEEDS_DIR) -> str:
    """A short hash of the reference files ``names`` (every CSV when None) and ``salt``: the code version of an
    asset computed from them, so editing a file makes it stale (and rebuilt by its automation condition)."""
    digest = hashlib.sha256(salt.encode())
    paths = [seeds_dir / n for n in names] if names is not None else sorted(seeds_dir.glob("*.csv"))
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
