"""Every dbt unit test (``unit_tests:`` in the models' YAML) runs and passes here. The product's builds leave them
out (``lib/core/dbt.py`` ``PRODUCT_BUILD_EXCLUDES``: they check the SQL against fixed inputs, not the data, and cost
every live wave seconds), so this is where they run: on the database of the session's ``e2a run``, where every
relation they read exists."""

from __future__ import annotations

import json

from e2a_dagster.lib.core.dbt import MANIFEST, run_dbt
from tests.e2e.conftest import CLI_DB


def test_every_dbt_unit_test_runs_and_passes(simulated_home, pg_info, dbt_manifest, tmp_path):
    assert simulated_home.run.returncode == 0, simulated_home.run.stderr[-2000:]
    defined = set(json.loads(MANIFEST.read_text())["unit_tests"])
    # At least the SLA statuses, the discrepancy types, the minimum and credit cap, re-promises, Shopify, shipping.
    assert len(defined) >= 10

    proc = run_dbt(
        ["test", "--select", "test_type:unit"], pg_info.with_dbname(CLI_DB), check=False, target_path=tmp_path
    )
    results = json.loads((tmp_path / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in results} == defined, proc.stdout[-3000:]
    failed = sorted(r["unique_id"] for r in results if r["status"] != "pass")
    assert failed == [], proc.stdout[-3000:]
    assert proc.returncode == 0
