"""The SLA radar page, rendered by a real browser (headless Chromium) from hand-written figures."""

import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from e2a_dagster.lib.actions.report import (
    MoneyLine,
    OpenException,
    RadarData,
    TrendPoint,
    chart_geometry,
    render_radar,
    write_radar,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _dump_dom(path, profile) -> str:
    if CHROMIUM is None:
        pytest.fail("headless Chromium is needed for this test: apt-get install -y chromium")
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return proc.stdout


def _data(**overrides) -> RadarData:
    first = date(2026, 8, 1)
    trend = [TrendPoint(first + timedelta(days=i), 0, 0) for i in range(30)]
    trend[10] = TrendPoint(date(2026, 8, 11), 11, 8)
    trend[11] = TrendPoint(date(2026, 8, 12), 4, 4)
    exception = OpenException(
        "e1",
        "acme",
        "A-1",
        "pick",
        "NJ1",
        "critical",
        "PICK_BACKLOG",
        datetime(2026, 8, 11, 14, 30, tzinfo=UTC),
        Decimal("125.50"),
        None,
    )
    values = dict(
        report_date=date(2026, 8, 30),
        generated_at=datetime(2026, 8, 30, 6, 0, tzinfo=UTC),
        trend=trend,
        exceptions=[
            exception,
            OpenException(
                "e2",
                "globex",
                "G-<1>",
                "ship",
                "BER1",
                "major",
                None,
                datetime(2026, 8, 11, 14, 0, tzinfo=UTC),
                Decimal("61.00"),
                "Carrier missed the pickup",
            ),
        ],
        open_exception_count=2,
        money=None,
    )
    values.update(overrides)
    return RadarData(**values)


def test_chart_breaks_the_line_on_days_without_data():
    chart = chart_geometry(_data().trend)
    # two plotted days, adjacent: one segment; 100 % sits on the top gridline, 72.7 % lower
    assert [(p["day"], p["pct"]) for p in chart["points"]] == [("2026-08-11", 72.7), ("2026-08-12", 100.0)]
    assert len(chart["segments"]) == 1
    assert chart["points"][1]["y"] == chart["gridlines"][2]["y"]


def test_rendered_in_chromium(tmp_path):
    html = render_radar(_data())
    assert "<script" not in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    path = write_radar(html, tmp_path / "reports", date(2026, 8, 30))
    assert path.name == "sla_radar_2026-08-30.html" and (tmp_path / "reports" / "sla_radar_latest.html").exists()
    dom = _dump_dom(path, tmp_path / "profile")
    assert "<title>E²A SLA radar — 2026-08-30</title>" in dom
    assert "<polyline" in dom and "2026-08-11: 72.7% of 11 due" in dom
    # open exceptions: the missing narrative shows as a dash, the present one as written, markup escaped
    assert '<td class="narrative">—</td>' in dom
    assert '<td class="narrative">Carrier missed the pickup</td>' in dom
    assert "G-&lt;1&gt;" in dom and "125.50" in dom
    assert "no data (invoice reconciliation has not run here)" in dom


def test_money_at_stake_when_adjustments_exist(tmp_path):
    data = _data(
        money=[MoneyLine("acme", "USD", 3, Decimal("-42.50"), Decimal("-30.00"))],
        exceptions=[],
        open_exception_count=0,
        trend=[TrendPoint(date(2026, 8, 1), 0, 0)],
    )
    dom = _dump_dom(write_radar(render_radar(data), tmp_path, date(2026, 8, 30)), tmp_path / "profile")
    assert '<tr class="money"><td>acme</td><td>USD</td><td>3</td><td>-42.50</td><td>-30.00</td></tr>' in dom
    assert "No open exceptions opened in this period." in dom and "No stage was due in this period" in dom
