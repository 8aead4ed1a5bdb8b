"""The operator's own reference folder (``E2A_REFERENCE_DIR``, issue 11): resolution, ``e2a init``, errors at
file:line before a run, and a warehouse in a country, currency and working week the demo has not (Japan)."""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from e2a_dagster.cli import main
from e2a_dagster.lib.core.reference import REFERENCE_FILES, Reference, write_starter
from e2a_dagster.lib.core.settings import DBT_PROJECT_DIR, PROJECT_ROOT, SEEDS_DIR, reference_dir
from e2a_dagster.lib.quality.lint import is_iso_currency, lint_seeds
from e2a_dagster.lib.sla.calendar import calendar_from_seeds

TOKYO = ZoneInfo("Asia/Tokyo")

JP_ROWS = {
    "tenants.csv": "nippon,Nippon KK,JPY,Asia/Tokyo,TYO1,1,0,3000,true,20,50000",
    "warehouses.csv": "TYO1,Tokyo fulfillment center,Asia/Tokyo,JP,,09:00,18:00,15:00,1|2|3|4|5|6",
    "rate_cards.csv": "\n".join(
        [
            "nippon_standard,1,nippon,ORDER_FEE,order,300,0,,whole_volume,,,JPY,2026-01-01,9999-12-31",
            "nippon_standard,1,nippon,PICK_UNIT,unit,40,0,,whole_volume,,,JPY,2026-01-01,9999-12-31",
            "nippon_standard,1,nippon,PACK_CARTON,carton,80,0,,whole_volume,,,JPY,2026-01-01,9999-12-31",
            "nippon_standard,1,nippon,SHIPPING,postage,1.00,0,,whole_volume,5.00,,JPY,2026-01-01,9999-12-31",
            "nippon_standard,1,nippon,RETURN_FEE,return,500,0,,whole_volume,,,JPY,2026-01-01,9999-12-31",
            "nippon_standard,1,nippon,MONTHLY_MINIMUM,period,,0,,whole_volume,,30000,JPY,2026-01-01,9999-12-31",
        ]
    ),
}


def japan_folder(root: Path) -> Path:
    """A starter folder (``e2a init``) with a third tenant in Japan: JPY, Asia/Tokyo, Monday–Saturday."""
    folder = root / "reference"
    write_starter(folder, SEEDS_DIR)
    for name, rows in JP_ROWS.items():
        with (folder / name).open("a", encoding="utf-8") as fh:
            fh.write(rows + "\n")
    return folder


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_reference_dir_is_the_env_var_made_absolute_else_the_demo_seeds(tmp_path):
    assert reference_dir({}) == SEEDS_DIR
    assert reference_dir({"E2A_REFERENCE_DIR": str(tmp_path)}) == tmp_path.resolve()


def test_init_writes_the_demo_files_and_a_readme_and_refuses_to_overwrite(tmp_path, capsys):
    folder = tmp_path / "ops-reference"
    assert main(["init", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([*REFERENCE_FILES, "README.md"])
    for name in REFERENCE_FILES:
        assert (folder / name).read_bytes() == (SEEDS_DIR / name).read_bytes()
    assert f"E2A_REFERENCE_DIR={folder}" in (folder / "README.md").read_text()
    assert lint_seeds(folder) == []
    (folder / "tenants.csv").write_text("changed\n")
    assert main(["init", str(folder)]) == 2
    assert "already holds tenants.csv" in capsys.readouterr().err
    assert (folder / "tenants.csv").read_text() == "changed\n"  # nothing overwritten


def test_run_stops_on_a_missing_file_or_a_bad_value_naming_file_and_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "broken"
    write_starter(folder, SEEDS_DIR)
    (folder / "carrier_services.csv").unlink()
    lines = (folder / "warehouses.csv").read_text().splitlines()
    lines[2] = lines[2].replace("Europe/Berlin", "Europe/Berlinn")
    (folder / "warehouses.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("E2A_REFERENCE_DIR", str(folder))
    # Stops before the database is opened or anything is ingested: exit 2 and a message, no traceback.
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "broken/carrier_services.csv:1: error: [missing_file]" in err
    assert "broken/warehouses.csv:3: error: [invalid_time_zone]" in err
    assert "Traceback" not in err
    assert main(["lint"]) == 1  # the same folder, the same findings
    assert "broken/warehouses.csv:3" in capsys.readouterr().out
    monkeypatch.setenv("E2A_REFERENCE_DIR", str(tmp_path / "nowhere"))
    assert main(["dev", "--no-demo"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_currencies_are_iso_4217_without_a_list_of_our_own():
    assert all(is_iso_currency(c) for c in ("JPY", "CHF", "BRL", "USD", "EUR"))
    assert not any(is_iso_currency(c) for c in ("XYZ", "jpy", "YEN", ""))


def test_a_japanese_tenant_lints_clean_and_its_calendar_is_monday_to_saturday_without_national_holidays(tmp_path):
    folder = japan_folder(tmp_path)
    assert lint_seeds(folder) == []
    ref = Reference.load(folder)
    assert ref.tenants["nippon"]["currency"] == "JPY" and ref.default_warehouse("nippon") == "TYO1"
    days = {
        d.local_date: d
        for d in calendar_from_seeds(folder, date(2026, 11, 20), date(2026, 11, 24))
        if d.warehouse_id == "TYO1"
    }
    # Saturday 2026-11-21 is a working day: 09:00–18:00 JST, cutoff 15:00.
    sat = days[date(2026, 11, 21)]
    assert sat.is_business_day
    assert sat.open_at == datetime(2026, 11, 21, 9, tzinfo=TOKYO)
    assert sat.close_at == datetime(2026, 11, 21, 18, tzinfo=TOKYO)
    assert sat.cutoff_at == datetime(2026, 11, 21, 15, tzinfo=TOKYO)
    assert not sat.is_carrier_business_day  # carriers: Monday–Friday (DESIGN §5)
    assert not days[date(2026, 11, 22)].is_business_day  # Sunday
    # Monday 2026-11-23: Labour Thanksgiving Day, a national holiday of Japan.
    mon = days[date(2026, 11, 23)]
    assert not mon.is_business_day and mon.is_public_holiday and mon.holiday_name
    assert days[date(2026, 11, 24)].is_business_day


def test_a_japanese_tenant_simulates_from_the_folder_alone(tmp_path):
    from e2a_dagster.lib.simulator.simulator import Simulator

    folder = japan_folder(tmp_path)
    sim = Simulator(Reference.load(folder), seed=3, seeds_dir=folder)
    start = datetime(2026, 11, 16, tzinfo=TOKYO)
    orders = [o for o in sim.orders(60, start, datetime(2026, 11, 21, tzinfo=TOKYO)) if o.tenant_id == "nippon"]
    assert orders and {o.warehouse_id for o in orders} == {"TYO1"}


def test_dbt_seeds_from_the_reference_folder(tmp_path, monkeypatch):
    """dbt's seed-paths follow ``E2A_REFERENCE_DIR`` (every dbt command E²A runs passes it, absolute)."""
    from e2a_dagster.lib.core.dbt import run_dbt

    folder = japan_folder(tmp_path)
    monkeypatch.setenv("E2A_REFERENCE_DIR", str(folder))
    before = _git_status()
    proc = run_dbt(
        ["ls", "--resource-type", "seed", "--output", "json", "--output-keys", "name", "original_file_path", "-q"]
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    seeds = {row["name"]: row["original_file_path"] for row in rows}
    # a path relative to dbt_project/ (a link to the folder): dbt writes a seed's SQL to target/run/e2a/<that path>,
    # which for an absolute path was the operator's own file
    assert not Path(seeds["tenants"]).is_absolute()
    assert (DBT_PROJECT_DIR / seeds["tenants"]).resolve() == (folder / "tenants.csv").resolve()
    assert set(seeds) == {name.removesuffix(".csv") for name in REFERENCE_FILES}
    assert _git_status() == before  # nothing under the repository changed


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_every_reference_file_has_a_header(name):
    with (SEEDS_DIR / name).open(newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh))


def test_every_reader_of_the_reference_folder_reads_it_through_one_function(tmp_path, monkeypatch):
    from e2a_dagster.lib.core.reference import reference_rows
    from e2a_dagster.lib.explanations.reference_data import NarrativeReference
    from e2a_dagster.lib.simulator.sim_billing import RateCards
    from e2a_dagster.lib.simulator.sim_sla import SlaReference

    folder = tmp_path / "reference"
    write_starter(folder)
    # A tenant and a warehouse only the operator's folder has: every reader sees them from E2A_REFERENCE_DIR.
    for name, key, value in (("tenants", "tenant_id", "only_here"), ("warehouses", "warehouse_id", "OH1")):
        first = reference_rows(f"{name}.csv", SEEDS_DIR)[0]
        with (folder / f"{name}.csv").open("a", newline="", encoding="utf-8") as fh:
            row = {**first, key: value, f"{name[:-1]}_name": "  Only Here  "}
            csv.DictWriter(fh, list(first)).writerow(row)
    monkeypatch.setenv("E2A_REFERENCE_DIR", str(folder))
    assert reference_rows("tenants.csv")[-1]["tenant_name"] == "Only Here"  # cells stripped
    assert "only_here" in Reference.load().tenants and "OH1" in Reference.load().warehouses
    assert "only_here" in NarrativeReference.load().tenants and "OH1" in NarrativeReference.load().warehouses
    assert "only_here" in RateCards().tenants
    assert "OH1" in SlaReference().calendars
    # ... and nothing else in the code opens a CSV with a reader of its own (lint keeps line numbers).
    readers = sorted(
        str(path.relative_to(PROJECT_ROOT))
        for root in ("e2a_dagster", "tests", "benchmarks")
        for path in (PROJECT_ROOT / root).rglob("*.py")
        if "DictReader(" in path.read_text(encoding="utf-8") and path.name != Path(__file__).name
    )
    assert readers == ["e2a_dagster/lib/core/reference.py", "e2a_dagster/lib/quality/lint.py"]


@pytest.mark.parametrize("written", ["false", "FALSE", " False ", "true", "True"])
def test_is_open_reads_the_same_in_the_calendar_the_narratives_the_oracle_and_lint(written, tmp_path):
    from e2a_dagster.lib.core.reference import reference_rows
    from e2a_dagster.lib.explanations.calendar_facts import calendar_facts, index_days
    from e2a_dagster.lib.simulator.sim_sla import BusinessCalendar
    from e2a_dagster.lib.sla.calendar import calendar_days

    # Monday 2026-03-02 at the Newark warehouse: a working day; the exception closes it or opens it 10:00-12:00.
    warehouse = next(r for r in reference_rows("warehouses.csv", SEEDS_DIR) if r["warehouse_id"] == "NJ1")
    opening = written.strip().lower() == "true"
    hours = ("10:00", "12:00") if opening else ("", "")
    exception = {
        "warehouse_id": "NJ1",
        "local_date": "2026-03-02",
        "is_open": written,
        "open_time": hours[0],
        "close_time": hours[1],
        "reason": "stocktake",
    }
    day = date(2026, 3, 2)
    (calendar,) = calendar_days([warehouse], [exception], day, day)
    assert calendar.is_business_day is opening
    assert (BusinessCalendar(warehouse, [exception]).hours(day) is not None) is opening
    # The narratives read the flag as the calendar stored it (reference.warehouse_calendar), not on their own.
    zone = ZoneInfo("America/New_York")
    facts = calendar_facts(
        warehouse,
        datetime(2026, 3, 2, 9, tzinfo=zone),
        datetime(2026, 3, 2, 17, tzinfo=zone),
        index_days([calendar]),
        "pick",
    )
    assert bool(facts["closures"]) is not opening

    folder = tmp_path / "reference"
    write_starter(folder)
    header = list(reference_rows("calendar_exceptions.csv", SEEDS_DIR)[0])
    with (folder / "calendar_exceptions.csv").open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, header).writerow({k: v for k, v in exception.items() if k in header})
    assert [f for f in lint_seeds(folder) if f.file.endswith("calendar_exceptions.csv")] == []


@pytest.mark.parametrize("written", ["yes", "1", "t", "open", ""])
def test_a_value_of_is_open_that_is_not_true_or_false_is_refused_everywhere(written, tmp_path):
    from e2a_dagster.lib.core.reference import is_open, reference_rows
    from e2a_dagster.lib.simulator.sim_sla import BusinessCalendar
    from e2a_dagster.lib.sla.calendar import calendar_days

    warehouse = next(r for r in reference_rows("warehouses.csv", SEEDS_DIR) if r["warehouse_id"] == "NJ1")
    exception = {
        "warehouse_id": "NJ1",
        "local_date": "2026-03-02",
        "is_open": written,
        "open_time": "10:00",
        "close_time": "12:00",
        "reason": "",
    }
    with pytest.raises(ValueError, match="is_open"):
        is_open(exception)
    with pytest.raises(ValueError, match="is_open"):
        list(calendar_days([warehouse], [exception], date(2026, 3, 2), date(2026, 3, 2)))
    with pytest.raises(ValueError, match="is_open"):
        BusinessCalendar(warehouse, [exception]).hours(date(2026, 3, 2))
    folder = tmp_path / "reference"
    write_starter(folder)
    header = list(reference_rows("calendar_exceptions.csv", SEEDS_DIR)[0])
    with (folder / "calendar_exceptions.csv").open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, header).writerow({k: v for k, v in exception.items() if k in header})
    codes = {f.code for f in lint_seeds(folder) if f.file.endswith("calendar_exceptions.csv")}
    assert "invalid_boolean" in codes
