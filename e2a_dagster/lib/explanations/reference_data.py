"""The reference data narratives need, read from the reference folder (``E2A_REFERENCE_DIR``, else ``seeds/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from e2a_dagster.lib.core.reference import reference_rows
from e2a_dagster.lib.core.settings import reference_dir


@dataclass(frozen=True)
class NarrativeReference:
    """The reference data narratives need, read from the reference folder (the files dbt seeds). The calendar is
    not here: it is read from ``reference.warehouse_calendar`` (``calendar_facts``)."""

    tenants: dict[str, dict[str, str]]
    warehouses: dict[str, dict[str, str]]
    policies: dict[tuple[str, int], dict[str, str]]
    reason_codes: dict[str, dict[str, str]]
    transit_days: dict[tuple[str, str], int]

    @classmethod
    def load(cls, seeds_dir: Path | None = None) -> NarrativeReference:
        seeds_dir = seeds_dir or reference_dir()
        rows = {
            name: reference_rows(f"{name}.csv", seeds_dir)
            for name in (
                "tenants",
                "warehouses",
                "sla_policies",
                "reason_codes",
                "carrier_services",
            )
        }
        return cls(
            tenants={r["tenant_id"]: r for r in rows["tenants"]},
            warehouses={r["warehouse_id"]: r for r in rows["warehouses"]},
            policies={(r["policy_id"], int(r["policy_version"])): r for r in rows["sla_policies"]},
            reason_codes={r["reason_code"]: r for r in rows["reason_codes"]},
            transit_days={(r["carrier"], r["service_level"]): int(r["transit_days"]) for r in rows["carrier_services"]},
        )

    def labels_for(self, stage: str) -> list[str]:
        return sorted(code for code, r in self.reason_codes.items() if r["stage"] in (stage, "*"))

    def policy_ids(self) -> set[str]:
        return {pid for pid, _ in self.policies}

    def transit(self, carrier: str | None, service_level: str | None) -> int | None:
        level = service_level or "ground"
        return self.transit_days.get((carrier or "*", level)) or self.transit_days.get(("*", level))
