"""Policy lint on the shipped seeds (clean) and on a deliberately broken copy (every fault at file:line)."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2a_dagster.cli import main
from e2a_dagster.lib.core.settings import SEEDS_DIR
from e2a_dagster.lib.quality.lint import has_errors, lint_seeds


def _edit(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert old in lines[line - 1], (path.name, line, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _append(path: Path, row: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(row + "\n")


def test_default_seeds_are_clean(capsys):
    assert lint_seeds() == []
    assert main(["lint"]) == 0
    assert "no findings" in capsys.readouterr().out


def test_broken_copy_reports_each_fault_with_file_and_line(tmp_path, capsys):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    _edit(seeds / "warehouses.csv", 2, "America/New_York", "America/New_Yrok")
    _edit(seeds / "warehouses.csv", 3, "16:00,12:00", "16:00,17:00")
    _edit(seeds / "sla_policies.csv", 2, "pick,duration,120,", "pick,duration,0,")
    _edit(seeds / "sla_policies.csv", 3, ",180,30,60,240,", ",180,30,300,240,")
    _append(
        seeds / "sla_policies.csv",
        "acme_pick,3,acme,*,*,*,pick,duration,80,30,60,240,"
        "2026-09-01T00:00:00-04:00,9999-12-31T00:00:00+00:00,Overlaps version 2",
    )
    _append(
        seeds / "sla_policies.csv",
        "xx_pack,1,acme,XX9,*,*,pack,duration,60,30,60,240,"
        "2026-01-01T00:00:00+00:00,9999-12-31T00:00:00+00:00,Unknown warehouse",
    )
    _edit(seeds / "rate_cards.csv", 3, ",2.25,1001,", ",2.25,900,")
    _edit(seeds / "rate_cards.csv", 4, ",0.35,", ",-0.35,")
    _edit(seeds / "rate_cards.csv", 9, ",EUR,", ",USD,")
    _edit(seeds / "carrier_services.csv", 2, ",ground,5,", ",ground,0,")

    found = {(f.file, f.line, f.code) for f in lint_seeds(seeds)}
    assert found == {
        ("seeds/warehouses.csv", 2, "invalid_time_zone"),
        ("seeds/warehouses.csv", 3, "cutoff_outside_opening_hours"),
        ("seeds/sla_policies.csv", 2, "non_positive_allowance"),
        ("seeds/sla_policies.csv", 3, "inverted_severity_thresholds"),
        ("seeds/sla_policies.csv", 7, "overlapping_range"),
        ("seeds/sla_policies.csv", 8, "unknown_reference"),
        ("seeds/rate_cards.csv", 3, "overlapping_tiers"),
        ("seeds/rate_cards.csv", 4, "negative_rate"),
        ("seeds/rate_cards.csv", 9, "currency_mismatch"),
        ("seeds/carrier_services.csv", 2, "non_positive_transit_days"),
    }
    assert has_errors(lint_seeds(seeds))

    assert main(["lint", "--seeds", str(seeds)]) == 1
    out = capsys.readouterr().out
    assert (
        "seeds/warehouses.csv:2: error: [invalid_time_zone] time_zone = 'America/New_Yrok' is not an IANA "
        "time zone (fix: use an IANA name such as America/New_York or Europe/Berlin)" in out
    )
    assert "seeds/sla_policies.csv:7: error: [overlapping_range]" in out and "10 error(s)" in out


def test_gaps_in_default_policies_are_errors_and_in_overrides_warnings(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    _edit(seeds / "sla_policies.csv", 5, "9999-12-31T00:00:00+00:00", "2026-01-01T00:00:00+00:00")
    _append(
        seeds / "sla_policies.csv",
        "default_deliver,2,*,*,*,*,deliver,transit_days,,0,1440,2880,"
        "2026-02-01T00:00:00+00:00,9999-12-31T00:00:00+00:00,After a gap",
    )
    _edit(seeds / "sla_policies.csv", 6, "9999-12-31T00:00:00+00:00", "2026-07-01T00:00:00-04:00")
    _append(
        seeds / "sla_policies.csv",
        "acme_pick,3,acme,*,*,*,pick,duration,80,30,60,240,"
        "2026-08-01T00:00:00-04:00,9999-12-31T00:00:00+00:00,After a gap",
    )
    found = {(f.line, f.severity, f.code) for f in lint_seeds(seeds)}
    assert found == {(7, "error", "gapped_range"), (8, "warning", "gapped_range")}


def test_ai_review_parses_suggestions_and_scenarios_from_the_model():
    import json

    from e2a_dagster.lib.explanations.llm import LLMConfig
    from e2a_dagster.lib.quality.lint_ai import ai_review
    from tests.fake_llm import FakeLLM

    answer = {
        "suggestions": [{"file": "seeds/sla_policies.csv", "line": 6, "message": "acme pick is tighter"}],
        "scenarios": [
            {
                "name": "after cutoff",
                "tenant_id": "acme",
                "warehouse_id": "NJ1",
                "as_of": "2026-03-03T18:00:00-05:00",
                "events": [{"event_type": "order_paid", "occurred_at": "2026-03-02T15:00:00-05:00"}],
                "expected": {"ship": "overdue"},
            }
        ],
    }
    with FakeLLM(default=lambda r: ("reply", json.dumps(answer))) as fake:
        cfg = LLMConfig(model="fake", base_url=fake.url, max_retries=0)
        review = ai_review(cfg, [])
        assert "sla_policies.csv" in fake.requests[0]["messages"][1]["content"]
        fake.default = lambda r: ("reply", "no JSON here")
        broken = ai_review(cfg, [])
    assert review.status == "ok" and review.suggestions[0]["line"] == 6
    assert review.scenarios[0].expected == {"ship": "overdue"} and review.tokens == 200
    assert (broken.status, broken.scenarios) == ("invalid_json", [])
