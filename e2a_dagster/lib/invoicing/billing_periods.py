"""Daily billing partitions (DESIGN §6, issue 5): which tenant-local days of billable activity to rebuild.

A partition key ``D`` (``YYYY-MM-DD``) means *each tenant's own calendar day D in its time zone*: the days
of ``intermediate.int_billable_activities_metered`` are ``activity_date`` values, already local. A refresh
of days ``[start, end]`` for some tenants records itself in ``ops.billable_activity_refreshes``; from that
table and the received invoices this module tells which days are stale:

- ``invoice_received``: a day of an invoice's period was never refreshed, or refreshed before the invoice's
  latest line arrived (the invoice must be checked against activity that is at least as new as itself);
- ``activity_changed``: ``marts.fct_orders`` rewrote an order after the day's refresh read it, and the order
  charges it implies now differ from the day's rows (a late event changing units or postage, a cancellation,
  a corrected hand-over time moving the order to another day).

The nightly schedule (02:00 in each tenant time zone) asks for the previous local day plus the stale days;
the invoice sensor asks for the stale days as soon as they appear. Plain functions, no Dagster here."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

DEFAULT_FIRST_DAY = "2025-01-01"


def first_billing_day(environ: Mapping[str, str] | None = None) -> date:
    """First day of the daily partitions: ``E2A_BILLING_START`` (``YYYY-MM-DD``), default 2025-01-01."""
    env = os.environ if environ is None else environ
    raw = (env.get("E2A_BILLING_START") or DEFAULT_FIRST_DAY).strip()
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"E2A_BILLING_START must be a date (YYYY-MM-DD), got {raw!r}") from exc


def previous_local_day(instant: datetime, time_zone: str) -> date:
    """The calendar day before ``instant``'s local day in ``time_zone`` (the day a 02:00 run closes)."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(ZoneInfo(time_zone)).date() - timedelta(days=1)


def tenants_by_zone(tenants: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    """``{time zone: [tenant ids]}`` from tenant reference rows (seeds/tenants.csv)."""
    zones: dict[str, list[str]] = {}
    for tenant_id, row in sorted(tenants.items()):
        zone = (row.get("time_zone") or "").strip()
        if zone:
            zones.setdefault(zone, []).append(tenant_id)
    return zones


def window_vars(start: date, end: date, tenants: Sequence[str] = ()) -> dict:
    """dbt vars of a refresh of ``[start, end]`` (inclusive) for ``tenants`` (empty = all tenants)."""
    if end < start:
        raise ValueError(f"window ends before it starts: {start} .. {end}")
    out: dict = {"billing_from": start.isoformat(), "billing_to": end.isoformat()}
    if tenants:
        out["billing_tenants"] = sorted(tenants)
    return out


@dataclass(frozen=True)
class StaleDays:
    """Days of one tenant to refresh, and why (``reasons``: day count by reason)."""

    tenant_id: str
    first_day: date
    last_day: date
    days: int
    reasons: dict[str, int] = field(default_factory=dict)
    invoices: tuple[str, ...] = ()

    def signature(self) -> str:
        return f"{self.tenant_id}:{self.first_day}:{self.last_day}:{self.days}:{sorted(self.reasons.items())}"


@dataclass(frozen=True)
class RefreshPlan:
    """One run: partition keys ``[start, end]`` for ``tenants``, with what asked for it."""

    start: date
    end: date
    tenants: tuple[str, ...]
    reasons: dict[str, str]

    def partition_range(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()


def plan_refresh(
    tenants: Iterable[str],
    stale: Iterable[StaleDays],
    *,
    yesterday: date | None,
    first_day: date,
    last_day: date,
) -> RefreshPlan | None:
    """The run covering ``yesterday`` (the nightly day, or None for the sensor) and every stale day of
    ``tenants``, clipped to the partitions ``[first_day, last_day]``; None when there is nothing to do."""
    wanted = sorted(set(tenants))
    spans: list[tuple[date, date]] = []
    reasons: dict[str, str] = {}
    if yesterday is not None and first_day <= yesterday <= last_day:
        spans.append((yesterday, yesterday))
        reasons["nightly"] = yesterday.isoformat()
    for s in stale:
        if s.tenant_id not in wanted:
            continue
        lo, hi = max(s.first_day, first_day), min(s.last_day, last_day)
        if lo > hi:
            continue
        spans.append((lo, hi))
        why = ", ".join(f"{k} {v}d" for k, v in sorted(s.reasons.items()))
        reasons[s.tenant_id] = f"{lo}..{hi} ({why})" + (f" invoices {', '.join(s.invoices)}" if s.invoices else "")
    if not spans:
        return None
    return RefreshPlan(
        start=min(a for a, _ in spans),
        end=max(b for _, b in spans),
        tenants=tuple(wanted),
        reasons=reasons,
    )


STALE_SQL = """
with invoices as (
    select tenant_id, period_start, period_end, max(ingested_at) as received_at,
           array_agg(distinct invoice_id order by invoice_id) as invoice_ids
    from raw.invoice_lines
    where tenant_id = any(:tenants)
    group by tenant_id, period_start, period_end
),
invoiced_days as (
    select invoices.tenant_id, cast(day as date) as day, invoices.received_at, invoices.invoice_ids
    from invoices
    cross join lateral generate_series(
        greatest(invoices.period_start, cast(:first_day as date)),
        least(invoices.period_end, cast(:last_day as date)),
        interval '1 day'
    ) as day
),
days as (
    select tenant_id, day, max(received_at) as received_at, array_agg(distinct i) as invoice_ids
    from invoiced_days cross join lateral unnest(invoice_ids) as i
    group by tenant_id, day
),
received as (
    select days.tenant_id, days.day, 'invoice_received' as reason, days.invoice_ids
    from days
    left join ops.billable_activity_refreshes as r
        on r.tenant_id = days.tenant_id and r.activity_date = days.day
    where r.refreshed_at is null or r.refreshed_at < days.received_at
),
{changed}
stale as (
    select * from received
    union all
    select * from changed_days
)
select tenant_id, day, reason, invoice_ids from stale order by tenant_id, day, reason
"""

# Orders fct_orders rewrote after the day's refresh read it (cheap: by index on built_at), kept only when the order
# charges they imply now differ from the day's rows (the live SLA refresh rewrites open orders every few minutes
# without any billing change). What an order implies is read from the dbt view
# intermediate.int_billable_order_charges, the one statement of the metering rule that
# int_billable_activities_metered also reads. Both days count: where the activity is now, and where its rows are
# (a moved hand-over, a cancellation). RETURN_FEE follows return events, not fct_orders: not compared here.
CHANGED_SQL = """
oldest_refresh as (
    select min(r.orders_built_at) as since
    from ops.billable_activity_refreshes as r
    inner join days on r.tenant_id = days.tenant_id and r.activity_date = days.day
),
changed_orders as (
    select o.tenant_id, o.order_id, o.built_at
    from marts.fct_orders as o
    inner join reference.tenants as t on t.tenant_id = o.tenant_id
    where o.tenant_id = any(:tenants) and o.built_at > (select since from oldest_refresh)
),
implied as (
    select i.tenant_id, i.order_id, i.built_at, i.activity_date as day, i.charge_code as code, i.quantity
    from intermediate.int_billable_order_charges as i
    where i.tenant_id = any(:tenants) and i.built_at > (select since from oldest_refresh)
),
metered as (
    select m.tenant_id, m.order_id, c.built_at, m.activity_date as day, m.charge_code as code, m.quantity
    from changed_orders as c
    inner join intermediate.int_billable_activities_metered as m
        on m.tenant_id = c.tenant_id and m.order_id = c.order_id
    where m.charge_code <> 'RETURN_FEE'
),
differences as (
    select coalesce(i.tenant_id, m.tenant_id) as tenant_id, coalesce(i.built_at, m.built_at) as built_at,
           i.day as implied_day, m.day as metered_day
    from implied as i
    full join metered as m
        on i.tenant_id = m.tenant_id and i.order_id = m.order_id and i.code = m.code
    where i.order_id is null or m.order_id is null or i.day <> m.day or i.quantity <> m.quantity
),
changed_order_days as (
    select tenant_id, built_at, implied_day as day from differences where implied_day is not null
    union
    select tenant_id, built_at, metered_day from differences where metered_day is not null
),
changed_days as (
    select distinct days.tenant_id, days.day, 'activity_changed' as reason, days.invoice_ids
    from changed_order_days as c
    inner join days on days.tenant_id = c.tenant_id and days.day = c.day
    inner join ops.billable_activity_refreshes as r
        on r.tenant_id = days.tenant_id and r.activity_date = days.day
    where c.built_at > r.orders_built_at
),
"""

NO_CHANGES_SQL = """
changed_days as (
    select cast(null as text) as tenant_id, cast(null as date) as day, cast(null as text) as reason,
           cast(null as text[]) as invoice_ids
    where false
),
"""


# What the activity_changed check reads (besides ops.*, which migrations create).
CHANGE_RELATIONS = (
    "marts.fct_orders",
    "reference.tenants",
    "intermediate.int_billable_order_charges",
    "intermediate.int_billable_activities_metered",
)


def _relation_exists(conn: sa.Connection, name: str) -> bool:
    return conn.execute(sa.text("select to_regclass(:n) is not null"), {"n": name}).scalar_one()


def stale_days(engine: sa.Engine, tenants: Sequence[str], *, first_day: date, last_day: date) -> list[StaleDays]:
    """Stale days of ``tenants`` within ``[first_day, last_day]``, one entry per tenant (see module doc)."""
    if not tenants or last_day < first_day:
        return []
    with engine.connect() as conn:
        # The view exists whenever the metered model does: every build of the metered model (the daily asset,
        # `tag:invoice`, a plain `dbt build`) creates it first, as its parent in the same partitioned asset.
        can_see_changes = all(_relation_exists(conn, name) for name in CHANGE_RELATIONS)
        sql = STALE_SQL.format(changed=CHANGED_SQL if can_see_changes else NO_CHANGES_SQL)
        rows = conn.execute(
            sa.text(sql), {"tenants": list(tenants), "first_day": first_day, "last_day": last_day}
        ).all()
    merged: dict[str, dict] = {}
    for tenant_id, day, reason, invoices in rows:
        m = merged.setdefault(tenant_id, {"days": set(), "reasons": {}, "invoices": set()})
        m["days"].add(day)
        m["reasons"][reason] = m["reasons"].get(reason, 0) + 1
        m["invoices"].update(invoices or [])
    return [
        StaleDays(
            tenant_id=t,
            first_day=min(m["days"]),
            last_day=max(m["days"]),
            days=len(m["days"]),
            reasons=m["reasons"],
            invoices=tuple(sorted(m["invoices"])),
        )
        for t, m in sorted(merged.items())
    ]


def refresh_marks(engine: sa.Engine) -> tuple[datetime, datetime | None]:
    """Taken before a refresh reads anything: the database clock, and the newest ``built_at`` in
    ``marts.fct_orders`` (the orders the refresh will see; a later SLA build writes a newer one)."""
    with engine.connect() as conn:
        now = conn.execute(sa.text("select now()")).scalar_one()
        orders_built_at = None
        if _relation_exists(conn, "marts.fct_orders"):
            orders_built_at = conn.execute(sa.text("select max(built_at) from marts.fct_orders")).scalar_one()
    return now, orders_built_at


def record_refresh(
    engine: sa.Engine,
    tenants: Sequence[str],
    start: date,
    end: date,
    *,
    refreshed_at: datetime,
    orders_built_at: datetime | None,
    run_id: str | None = None,
) -> int:
    """Mark ``[start, end]`` of ``tenants`` refreshed (upsert; a refresh never moves a mark backwards)."""
    if not tenants or end < start:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            sa.text(
                """
                insert into ops.billable_activity_refreshes
                    (tenant_id, activity_date, refreshed_at, orders_built_at, run_id)
                select t, cast(d as date), :refreshed_at, :orders_built_at, :run_id
                from unnest(cast(:tenants as text[])) as t
                cross join generate_series(cast(:start as date), cast(:end as date), interval '1 day') as d
                on conflict (tenant_id, activity_date) do update
                set refreshed_at = excluded.refreshed_at,
                    orders_built_at = excluded.orders_built_at,
                    run_id = excluded.run_id
                where ops.billable_activity_refreshes.refreshed_at <= excluded.refreshed_at
                """
            ),
            {
                "tenants": list(tenants),
                "start": start,
                "end": end,
                "refreshed_at": refreshed_at,
                "orders_built_at": orders_built_at,
                "run_id": run_id,
            },
        )
    return result.rowcount


def window_metrics(engine: sa.Engine, tenants: Sequence[str], start: date, end: date) -> dict:
    """What a refresh left in its window: activities and quantity by charge code, days with activity."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                select charge_code, count(*) as activities, sum(quantity) as quantity,
                       count(distinct (tenant_id, activity_date)) as tenant_days
                from intermediate.int_billable_activities_metered
                where activity_date between :start and :end and tenant_id = any(:tenants)
                group by charge_code order by charge_code
                """
            ),
            {"tenants": list(tenants), "start": start, "end": end},
        ).all()
    return {
        "window": f"{start}..{end}",
        "tenants": ", ".join(sorted(tenants)),
        "activities": sum(r.activities for r in rows),
        "activities_by_charge_code": {r.charge_code: r.activities for r in rows},
        "quantity_by_charge_code": {r.charge_code: float(r.quantity) for r in rows},
    }
