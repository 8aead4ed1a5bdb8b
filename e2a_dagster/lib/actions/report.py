"""The daily SLA radar report: one self-contained HTML page (inline SVG chart, no scripts, no CDN).

``collect_radar`` reads the figures (plain SQL), ``render_radar`` turns them into HTML (Jinja2), ``write_radar``
puts the page under ``E2A_HOME/reports/``. Sections whose source table does not exist yet say so ("—" for a
missing narrative, "no data" for money): nothing is made up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jinja2
import sqlalchemy as sa

TREND_DAYS = 30
MAX_EXCEPTIONS = 50
NO_NARRATIVE = "—"


@dataclass(frozen=True)
class TrendPoint:
    day: date
    due_count: int
    met_count: int

    @property
    def compliance_pct(self) -> float | None:
        return round(100.0 * self.met_count / self.due_count, 1) if self.due_count else None


@dataclass(frozen=True)
class OpenException:
    exception_id: str
    tenant_id: str
    order_id: str
    stage: str
    warehouse_id: str | None
    severity: str | None
    reason_code: str | None
    due_at: datetime
    minutes_late: Decimal | None
    narrative: str | None


@dataclass(frozen=True)
class MoneyLine:
    tenant_id: str
    currency: str
    open_adjustments: int
    total_amount: Decimal
    needs_review_amount: Decimal


@dataclass
class RadarData:
    report_date: date
    generated_at: datetime
    trend: list[TrendPoint] = field(default_factory=list)
    exceptions: list[OpenException] = field(default_factory=list)
    open_exception_count: int = 0
    money: list[MoneyLine] | None = None  # None: the invoice tables do not exist (no data)
    narratives_available: bool = False


def _exists(conn: sa.Connection, relation: str) -> bool:
    return conn.exec_driver_sql("select to_regclass(%s)", (relation,)).scalar_one() is not None


def collect_radar(engine: sa.Engine, report_date: date, generated_at: datetime) -> RadarData:
    data = RadarData(report_date=report_date, generated_at=generated_at)
    first = report_date - timedelta(days=TREND_DAYS - 1)
    with engine.connect() as conn:
        by_day = {
            row.due_local_date: row
            for row in conn.execute(
                sa.text(
                    """
                    select due_local_date, sum(due_count) as due_count, sum(met_count) as met_count
                    from marts.agg_sla_compliance_daily
                    where due_local_date between :first and :last
                    group by due_local_date
                    """
                ),
                {"first": first, "last": report_date},
            )
        }
        for offset in range(TREND_DAYS):
            day = first + timedelta(days=offset)
            row = by_day.get(day)
            data.trend.append(TrendPoint(day, int(row.due_count) if row else 0, int(row.met_count) if row else 0))

        data.narratives_available = _exists(conn, "actions.exception_narratives")
        narrative_join = (
            """
            left join actions.exception_narratives_current as n on n.exception_id = e.exception_id
            """
            if data.narratives_available
            else "left join (select null::text as exception_id, null::text as ops_note) as n on false"
        )
        data.open_exception_count = conn.execute(
            sa.text("select count(*) from marts.fct_sla_exceptions where status = 'open'")
        ).scalar_one()
        rows = (
            conn.execute(
                sa.text(
                    f"""
                select e.exception_id, e.tenant_id, e.order_id, e.stage, e.warehouse_id, e.severity,
                       e.reason_code, e.due_at, e.minutes_late, n.ops_note as narrative
                from marts.fct_sla_exceptions as e
                {narrative_join}
                where e.status = 'open' and e.opened_at >= :start and e.opened_at < :end
                order by case e.severity when 'critical' then 0 when 'major' then 1 else 2 end,
                         e.minutes_late desc nulls last, e.exception_id
                limit :limit
                """
                ),
                {"limit": MAX_EXCEPTIONS, "start": first, "end": report_date + timedelta(days=1)},
            )
            .mappings()
            .all()
        )
        data.exceptions = [OpenException(**row) for row in rows]

        if _exists(conn, "actions.invoice_adjustments"):
            data.money = [
                MoneyLine(**row)
                for row in conn.execute(
                    sa.text(
                        """
                        select tenant_id, currency, count(*) as open_adjustments, sum(amount) as total_amount,
                               coalesce(sum(amount) filter (where approval_status = 'needs_review'), 0)
                                   as needs_review_amount
                        from actions.invoice_adjustments
                        where status = 'open'
                        group by tenant_id, currency
                        order by tenant_id, currency
                        """
                    )
                ).mappings()
            ]
    return data


# ----------------------------------------------------------------------------------------------------
# Rendering

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 220, 36


def chart_geometry(trend: list[TrendPoint]) -> dict:
    """Plot coordinates for the inline SVG: one polyline per run of days with a compliance figure (a day with
    nothing due breaks the line: no invented point)."""
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    step = inner_w / max(len(trend) - 1, 1)
    points, segments, current = [], [], []
    for i, point in enumerate(trend):
        pct = point.compliance_pct
        if pct is None:
            if current:
                segments.append(current)
            current = []
            continue
        x = round(CHART_PAD + i * step, 1)
        y = round(CHART_PAD + inner_h * (1 - pct / 100), 1)
        points.append({"x": x, "y": y, "day": point.day.isoformat(), "pct": pct, "due": point.due_count})
        current.append(f"{x},{y}")
    if current:
        segments.append(current)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "pad": CHART_PAD,
        "segments": [" ".join(s) for s in segments],
        "points": points,
        "gridlines": [{"pct": p, "y": round(CHART_PAD + inner_h * (1 - p / 100), 1)} for p in (0, 50, 100)],
        "first_day": trend[0].day.isoformat() if trend else "",
        "last_day": trend[-1].day.isoformat() if trend else "",
    }


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>E²A SLA radar — {{ data.report_date }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }
h1 { margin-bottom: 0; } .muted { color: #616e7c; }
table { border-collapse: collapse; margin-top: .5rem; } th, td { border-bottom: 1px solid #e4e7eb; padding: .3rem .6rem; text-align: left; }
.critical { color: #b42318; font-weight: 600; } .major { color: #b54708; }
svg .line { fill: none; stroke: #2563eb; stroke-width: 2; } svg .grid { stroke: #e4e7eb; } svg text { font-size: 11px; fill: #616e7c; }
</style>
</head>
<body>
<h1>SLA radar</h1>
<p class="muted">Report for {{ data.report_date }} · generated {{ data.generated_at.strftime('%Y-%m-%d %H:%M %Z') }}</p>

<section id="trend">
<h2>Compliance trend (last {{ data.trend | length }} days)</h2>
{% if chart.points %}
<svg xmlns="http://www.w3.org/2000/svg" width="{{ chart.width }}" height="{{ chart.height }}" role="img"
     aria-labelledby="trend-title">
<title id="trend-title">Daily SLA compliance, {{ chart.first_day }} to {{ chart.last_day }}</title>
{% for g in chart.gridlines %}<line class="grid" x1="{{ chart.pad }}" x2="{{ chart.width - chart.pad }}" y1="{{ g.y }}" y2="{{ g.y }}"/><text x="2" y="{{ g.y + 4 }}">{{ g.pct }}%</text>
{% endfor %}
{% for s in chart.segments %}<polyline class="line" points="{{ s }}"/>
{% endfor %}
{% for p in chart.points %}<circle cx="{{ p.x }}" cy="{{ p.y }}" r="3" fill="#2563eb"><title>{{ p.day }}: {{ p.pct }}% of {{ p.due }} due</title></circle>
{% endfor %}
<text x="{{ chart.pad }}" y="{{ chart.height - 8 }}">{{ chart.first_day }}</text>
<text x="{{ chart.width - chart.pad }}" y="{{ chart.height - 8 }}" text-anchor="end">{{ chart.last_day }}</text>
</svg>
<table id="trend-table">
<tr><th>day</th>{% for p in chart.points %}<td>{{ p.day[5:] }}</td>{% endfor %}</tr>
<tr><th>compliance</th>{% for p in chart.points %}<td>{{ p.pct }}%</td>{% endfor %}</tr>
</table>
{% else %}
<p>No stage was due in this period: no compliance figure.</p>
{% endif %}
</section>

<section id="exceptions">
<h2>Open exceptions opened in these {{ data.trend | length }} days</h2>
<p class="muted">{{ data.open_exception_count }} open in total.</p>
{% if data.exceptions %}
<table>
<tr><th>tenant</th><th>order</th><th>stage</th><th>warehouse</th><th>severity</th><th>reason</th><th>due</th><th>minutes late</th><th>narrative</th></tr>
{% for e in data.exceptions %}
<tr class="exception" data-exception-id="{{ e.exception_id }}">
<td>{{ e.tenant_id }}</td><td>{{ e.order_id }}</td><td>{{ e.stage }}</td><td>{{ e.warehouse_id or '—' }}</td>
<td class="{{ e.severity or '' }}">{{ e.severity or '—' }}</td><td>{{ e.reason_code or '—' }}</td>
<td>{{ e.due_at.strftime('%Y-%m-%d %H:%M %Z') }}</td><td>{{ e.minutes_late if e.minutes_late is not none else '—' }}</td>
<td class="narrative">{{ e.narrative or no_narrative }}</td>
</tr>
{% endfor %}
</table>
{% if data.exceptions | length == max_exceptions %}<p class="muted">Showing the {{ max_exceptions }} most severe.</p>{% endif %}
{% else %}
<p>No open exceptions opened in this period.</p>
{% endif %}
</section>

<section id="money">
<h2>Money at stake</h2>
{% if data.money is none %}
<p>no data (invoice reconciliation has not run here)</p>
{% elif not data.money %}
<p>No open invoice adjustments.</p>
{% else %}
<table>
<tr><th>tenant</th><th>currency</th><th>open adjustments</th><th>total (negative = credit to the client)</th><th>needs review</th></tr>
{% for m in data.money %}
<tr class="money"><td>{{ m.tenant_id }}</td><td>{{ m.currency }}</td><td>{{ m.open_adjustments }}</td><td>{{ m.total_amount }}</td><td>{{ m.needs_review_amount }}</td></tr>
{% endfor %}
</table>
{% endif %}
</section>
</body>
</html>
"""


def render_radar(data: RadarData) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        data=data,
        chart=chart_geometry(data.trend),
        no_narrative=NO_NARRATIVE,
        max_exceptions=MAX_EXCEPTIONS,
    )


def write_radar(html: str, reports_dir: Path, report_date: date) -> Path:
    """Write ``sla_radar_<date>.html`` (replaced by a re-run the same day) and ``sla_radar_latest.html``."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"sla_radar_{report_date.isoformat()}.html"
    for target in (path, reports_dir / "sla_radar_latest.html"):
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    return path
