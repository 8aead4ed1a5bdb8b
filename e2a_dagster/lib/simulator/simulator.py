"""A deterministic generator of realistic, labelled order histories (``e2a simulate``) and a live feed
(``e2a dev``).

Every order gets a timeline in its warehouse's business time (``sim_sla.BusinessCalendar``: opening hours,
weekends, public holidays from ``holidays``, calendar exceptions): created → paid → (hold) → pick → pack → label →
carrier pickup → in transit → out for delivery → delivered, with a late tail, and carrier transit by service level
in carrier business days. Orders arrive more on weekday afternoons and evenings than at night or on holidays.

Where the events go:
- landing zone (``<landing>/events/*.jsonl``): canonical events from the OMS, WMS and carrier, one file per arrival
  day. Arrival is not occurrence: events come a little after they happen, and at the ``anomalies`` rate some come
  twice, out of order or days late, some carrier scans never come, and some carrier scans carry a split order
  reference (``<order_id>-1``). Landing events carry no personal data.
- mock Shopify store (``E2A_HOME/mock_shopify/orders.jsonl``): for the Shopify tenant, a share of orders are
  Shopify orders: their order events are Shopify order versions (Faker customers, addresses and products live
  only in these payloads) and the warehouse and carrier events still come through the landing zone.
- billing (``<landing>/billing/*.csv``): the billing system's invoice per tenant and complete month, with
  injected errors (``sim_billing``).
- ground truth (``E2A_HOME/ground_truth/<run>.jsonl``): the answer key, see ``docs/simulator.md``.

Same seed and window, same output. Order ids embed a run tag derived from (seed, window start), so runs with
other seeds or windows, and live feeds started at other instants, never reuse an id."""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from faker import Faker
from faker.config import AVAILABLE_LOCALES

from e2a_dagster.lib.core import clock
from e2a_dagster.lib.core.reference import Reference, reference_rows
from e2a_dagster.lib.core.settings import reference_dir
from e2a_dagster.lib.simulator.sim_billing import (
    BillableOrder,
    RateCards,
    correct_invoices,
    inject_errors,
    invoice_truth,
    write_invoices,
)
from e2a_dagster.lib.simulator.sim_billing import supplementary_invoices as split_supplementary
from e2a_dagster.lib.simulator.sim_sla import Milestones, SlaReference, evaluate

SERVICE_MIX = (("ground", 0.7), ("express", 0.22), ("overnight", 0.08))
TRANSIT_DAYS = {"ground": 5, "express": 2, "overnight": 1}
TRANSIT_DAYS_FACTOR = {"ground": 1.0, "express": 1.8, "overnight": 3.2}
# Demo flavour by the warehouse country; any other country simulates with the generic fallback (no list of
# supported countries: the reference folder alone decides where warehouses are).
CARRIERS = {"US": ("ups", "fedex", "usps"), "DE": ("dhl", "dpd")}
SHOPIFY_SHIPPING = {"ground": "Standard Shipping", "express": "Express (2 Day)", "overnight": "Overnight"}
ANOMALY_KINDS = ("duplicate", "out_of_order", "late_arrival", "missing_scan", "split_identifier")
# Order intake by local hour (peaks late morning and evening); weekends and holidays are quieter.
HOUR_WEIGHTS = (
    0.15,
    0.1,
    0.08,
    0.08,
    0.1,
    0.15,
    0.25,
    0.45,
    0.7,
    0.9,
    1.0,
    1.0,
    1.0,
    0.95,
    0.9,
    0.85,
    0.85,
    0.85,
    0.8,
    0.9,
    1.0,
    0.9,
    0.6,
    0.3,
)
WEEKEND_FACTOR = 0.65
HOLIDAY_FACTOR = 0.5
GROUND_TRUTH_FORMAT = "e2a-simulation-ground-truth/1"


def run_tag(seed: int, start: datetime, *, live: bool = False) -> str:
    """Six base-36 characters naming a run: part of every order id, so ids never repeat across runs."""
    digest = hashlib.blake2b(
        f"{'live' if live else 'hist'}:{seed}:{start.isoformat()}".encode(), digest_size=8
    ).digest()
    n = int.from_bytes(digest, "big")
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(6):
        n, r = divmod(n, 36)
        out += chars[r]
    return out


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


@dataclass(order=True)
class SimEvent:
    """A canonical event record and when it reaches the landing zone."""

    arrives_at: datetime
    seq: int
    record: dict = field(compare=False)
    occurred_at: datetime = field(compare=False, default=None)  # type: ignore[assignment]


@dataclass
class SimOrder:
    tenant_id: str
    order_id: str
    channel: str  # "landing" or "shopify"
    warehouse_id: str
    carrier: str
    service_level: str
    events: list[SimEvent] = field(default_factory=list)
    shopify_versions: list[tuple[datetime, dict]] = field(default_factory=list)
    shopify_events: list[tuple[str, datetime]] = field(default_factory=list)  # what staging derives from them
    anomalies: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


class Simulator:
    """Orders for every tenant in ``seeds/``, as timelines of events."""

    def __init__(
        self,
        reference: Reference,
        seed: int = 7,
        anomalies: float = 0.0,
        *,
        tag: str | None = None,
        shopify_tenant: str | None = None,
        shopify_share: float = 0.5,
        seeds_dir: Path | None = None,
        sla: SlaReference | None = None,
    ):
        self.reference = reference
        seeds_dir = seeds_dir or reference_dir()
        self.seed = seed
        self.rng = random.Random(seed)
        self.anomalies = max(0.0, min(1.0, anomalies))
        self.tag = tag or run_tag(seed, datetime(2000, 1, 1, tzinfo=UTC))
        self.tenants = sorted(reference.tenants)
        self.sla = sla or SlaReference(seeds_dir)
        self.shopify_tenant = shopify_tenant
        self.shopify_share = shopify_share
        self.locations = {
            (r["tenant_id"], r["warehouse_id"]): r["location_id"]
            for r in reference_rows("shopify_locations.csv", seeds_dir)
        }
        self._fakers: dict[str, Faker] = {}
        self._seq = 0
        self._order_no = 0

    # -- helpers --------------------------------------------------------------------------------------------------

    def faker(self, country: str) -> Faker:
        """Names and addresses of the warehouse's country: the first Faker locale of that country, else en_US."""
        locale = next((loc for loc in sorted(AVAILABLE_LOCALES) if loc.endswith(f"_{country}")), "en_US")
        if locale not in self._fakers:
            fake = Faker(locale)
            fake.seed_instance(self.seed)
            self._fakers[locale] = fake
        return self._fakers[locale]

    def calendar(self, tenant: str):
        return self.sla.calendars[self.reference.default_warehouse(tenant)]

    def intake_weight(self, tenant: str, at: datetime) -> float:
        cal = self.calendar(tenant)
        local = at.astimezone(ZoneInfo(self.reference.tenants[tenant]["time_zone"]))
        weight = HOUR_WEIGHTS[local.hour]
        if local.isoweekday() > 5:
            weight *= WEEKEND_FACTOR
        if cal.is_holiday(local.date()):
            weight *= HOLIDAY_FACTOR
        return weight

    def creation_times(self, count: int, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
        """``count`` (created_at, tenant) pairs in [start, end), by intake weight, in time order."""
        span = (end - start).total_seconds()
        out = []
        while len(out) < count:
            tenant = self.rng.choice(self.tenants)
            at = start + timedelta(seconds=int(self.rng.uniform(0, span)))
            if self.rng.random() <= self.intake_weight(tenant, at):
                out.append((at, tenant))
        out.sort()
        return out

    def _event(self, order: SimOrder, event_type: str, source: str, at: datetime, **extra) -> SimEvent:
        self._seq += 1
        record = {
            "event_id": f"{order.order_id}-{event_type}",
            "tenant_id": order.tenant_id,
            "source": source,
            "event_type": event_type,
            "order_id": order.order_id,
            "occurred_at": _iso(at.astimezone(self.calendar(order.tenant_id).tz)),
        }
        record.update({k: v for k, v in extra.items() if v is not None})
        lag = self.rng.uniform(60, 7200) if source == "carrier" else self.rng.uniform(2, 600)
        return SimEvent(at + timedelta(seconds=lag), self._seq, record, at)

    def _shopify_id(self, n: int) -> int:
        digest = hashlib.blake2b(f"{self.tag}:{n}".encode(), digest_size=6).digest()
        return 1_000_000_000_000 + int.from_bytes(digest, "big") % 9_000_000_000_000

    # -- one order ------------------------------------------------------------------------------------------------

    def order(self, tenant: str, created: datetime) -> SimOrder:
        rng = self.rng
        self._order_no += 1
        n = self._order_no
        cal = self.calendar(tenant)
        currency = self.reference.tenants[tenant]["currency"]
        shopify = tenant == self.shopify_tenant and rng.random() < self.shopify_share
        order_id = str(self._shopify_id(n)) if shopify else f"{tenant[:2].upper()}-{self.tag}-{n:06d}"
        country = self.reference.warehouses.get(cal.warehouse_id, {}).get("country", "").upper()
        carrier = rng.choice(CARRIERS.get(country, ("ups",)))
        service = rng.choices([s for s, _ in SERVICE_MIX], [w for _, w in SERVICE_MIX])[0]
        order = SimOrder(tenant, order_id, "shopify" if shopify else "landing", cal.warehouse_id, carrier, service)
        units = rng.choice((1, 1, 1, 2, 2, 3, 4, 6))
        lines = min(units, rng.choice((1, 1, 2, 3)))
        wh = {"warehouse_id": cal.warehouse_id}
        t: dict[str, datetime] = {"order_created": created}

        paid = created if shopify else created + timedelta(minutes=rng.expovariate(1 / 8))
        if not shopify and rng.random() < 0.03:
            paid += timedelta(hours=rng.uniform(1, 6))  # payment review
        t["order_paid"] = paid
        clock = paid
        if rng.random() < self.anomalies / 2:
            t["hold_placed"] = paid + timedelta(minutes=rng.uniform(1, 30))
            t["hold_released"] = cal.add_minutes(t["hold_placed"], rng.uniform(30, 240))
            clock = t["hold_released"]
        cancel = rng.random() < 0.02 + self.anomalies / 10
        cancel_after_pick = cancel and rng.random() < 0.3
        late = rng.random() < 0.08
        if cancel and not cancel_after_pick:
            t["order_cancelled"] = clock + timedelta(minutes=rng.uniform(5, 180))
        else:
            t["pick_started"] = cal.add_minutes(clock, rng.expovariate(1 / 25) + (rng.uniform(90, 400) if late else 0))
            t["pick_completed"] = cal.add_minutes(t["pick_started"], rng.uniform(5, 35) * max(1, lines))
            if cancel:
                t["order_cancelled"] = t["pick_completed"] + timedelta(minutes=rng.uniform(1, 60))
            else:
                pack_late = rng.random() < 0.06
                t["pack_completed"] = cal.add_minutes(
                    t["pick_completed"], rng.uniform(8, 60) + (rng.uniform(150, 400) if pack_late else 0)
                )
                t["label_printed"] = cal.add_minutes(t["pack_completed"], rng.uniform(2, 20))
                # The carrier collects once a day, shortly before closing.
                day = cal.local_date(t["label_printed"])
                hours = cal.hours(day)
                pickup = hours[1] - timedelta(minutes=rng.uniform(10, 70)) if hours else None
                if pickup is None or pickup < t["label_printed"] + timedelta(minutes=5):
                    nxt = cal.hours(cal.next_business_day(day))
                    pickup = nxt[1] - timedelta(minutes=rng.uniform(10, 70))
                t["carrier_pickup"] = pickup
                t["picked_up"] = pickup + timedelta(minutes=rng.uniform(1, 15))
                t["in_transit"] = t["picked_up"] + timedelta(hours=rng.uniform(3, 9))
                days = TRANSIT_DAYS[service]
                r = rng.random()
                if r < 0.06:
                    days += rng.choice((1, 2))
                elif r < 0.31 and days > 1:
                    days -= 1
                due_day = cal.carrier_business_days_after(cal.local_date(pickup), days)
                delivered = datetime.combine(due_day, time(9), cal.tz).astimezone(UTC) + timedelta(
                    minutes=rng.uniform(0, 600)
                )
                t["delivered"] = max(delivered, t["in_transit"] + timedelta(hours=2))
                t["out_for_delivery"] = max(
                    t["delivered"] - timedelta(hours=rng.uniform(1, 4)),
                    t["in_transit"] + timedelta(minutes=30),
                )
                if rng.random() < 0.02:
                    back = cal.add_minutes(t["delivered"] + timedelta(days=rng.uniform(3, 10)), rng.uniform(0, 120))
                    tz = ZoneInfo(self.reference.tenants[tenant]["time_zone"])
                    if back.astimezone(tz).month == pickup.astimezone(tz).month:
                        t["return_received"] = back

        t = {kind: at.astimezone(UTC).replace(microsecond=0) for kind, at in t.items()}  # events carry seconds
        cartons = 1 if units < 4 else 2
        postage = Decimal(str(round(rng.uniform(4.5, 9.5) * TRANSIT_DAYS_FACTOR[service], 2)))
        tracking = f"{carrier.upper()}{rng.randrange(10**11):011d}"
        ev = order.events
        if not shopify:
            ev.append(
                self._event(order, "order_created", "oms", created, units=units, lines=lines, service_level=service)
            )
            ev.append(self._event(order, "order_paid", "oms", paid))
            if "order_cancelled" in t:
                ev.append(self._event(order, "order_cancelled", "oms", t["order_cancelled"]))
        for kind in ("hold_placed", "hold_released"):
            if kind in t:
                ev.append(self._event(order, kind, "oms", t[kind]))
        if "pick_started" in t:
            ev.append(self._event(order, "pick_started", "wms", t["pick_started"], **wh))
            ev.append(self._event(order, "pick_completed", "wms", t["pick_completed"], units=units, lines=lines, **wh))
        if "pack_completed" in t:
            ev.append(self._event(order, "pack_completed", "wms", t["pack_completed"], cartons=cartons, **wh))
            ev.append(
                self._event(
                    order,
                    "label_printed",
                    "wms",
                    t["label_printed"],
                    carrier=carrier,
                    service_level=service,
                    tracking_number=tracking,
                    postage=str(postage),
                    **wh,
                )
            )
            ev.append(self._event(order, "carrier_pickup", "wms", t["carrier_pickup"], carrier=carrier, **wh))
            ev.append(
                self._event(
                    order,
                    "picked_up",
                    "carrier",
                    t["picked_up"],
                    carrier=carrier,
                    service_level=service,
                    tracking_number=tracking,
                )
            )
            for kind in ("in_transit", "out_for_delivery", "delivered"):
                ev.append(self._event(order, kind, "carrier", t[kind], carrier=carrier, tracking_number=tracking))
        if "return_received" in t:
            ev.append(self._event(order, "return_received", "wms", t["return_received"], **wh))
        if shopify:
            self._shopify(order, t, units=units, lines=lines, tracking=tracking, currency=currency, country=country)
        if self.anomalies and rng.random() < self.anomalies:
            self._anomaly(order, rng.choice(ANOMALY_KINDS))
        return order

    def _shopify(
        self,
        order: SimOrder,
        t: dict[str, datetime],
        *,
        units: int,
        lines: int,
        tracking: str,
        currency: str,
        country: str,
    ) -> None:
        """Shopify order versions: created (paid at checkout), cancelled, fulfilled, in transit, delivered."""
        rng = self.rng
        fake = self.faker(country)
        n = self._order_no
        first, last = fake.first_name(), fake.last_name()
        address = {
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}",
            "address1": fake.street_address(),
            "city": fake.city(),
            "zip": fake.postcode(),
            "country_code": country or "US",
            "phone": fake.phone_number(),
        }
        quantities = [1] * lines
        for _ in range(units - lines):
            quantities[rng.randrange(lines)] += 1
        items = []
        for i, qty in enumerate(quantities):
            price = Decimal(str(round(rng.uniform(8, 120), 2)))
            items.append(
                {
                    "id": int(order.order_id) * 10 + i,
                    "title": f"{fake.color_name()} {fake.word().title()}",
                    "sku": f"SKU-{rng.randrange(10**6):06d}",
                    "quantity": qty,
                    "price": str(price),
                    "requires_shipping": True,
                    "fulfillment_status": None,
                }
            )
        subtotal = sum(Decimal(i["price"]) * i["quantity"] for i in items)
        created = t["order_created"]
        base = {
            "id": int(order.order_id),
            "name": f"#{1000 + n}",
            "order_number": 1000 + n,
            "email": fake.email(),
            "created_at": _iso(created),
            "processed_at": _iso(created),
            "currency": currency,
            "financial_status": "paid",
            "fulfillment_status": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "location_id": None,
            "subtotal_price": str(subtotal),
            "total_price": str(subtotal),
            "test": False,
            "customer": {"first_name": first, "last_name": last, "email": fake.email()},
            "shipping_address": address,
            "billing_address": address,
            "line_items": items,
            "shipping_lines": [
                {
                    "code": SHOPIFY_SHIPPING[order.service_level],
                    "title": SHOPIFY_SHIPPING[order.service_level],
                    "price": "0.00",
                }
            ],
            "fulfillments": [],
        }

        def version(at: datetime, **changes) -> None:
            payload = json.loads(json.dumps(order.shopify_versions[-1][1])) if order.shopify_versions else dict(base)
            payload.update(changes)
            payload["updated_at"] = _iso(at)
            order.shopify_versions.append((at.replace(microsecond=0), payload))

        version(created)
        order.shopify_events += [("order_created", created), ("order_paid", created)]
        if "order_cancelled" in t:
            version(
                t["order_cancelled"],
                cancelled_at=_iso(t["order_cancelled"]),
                cancel_reason="customer",
                financial_status="refunded",
            )
            order.shopify_events.append(("order_cancelled", t["order_cancelled"]))
            return
        if "label_printed" not in t:
            return
        fulfillment = {
            "id": int(order.order_id) * 10 + 9,
            "order_id": int(order.order_id),
            "status": "success",
            "created_at": _iso(t["label_printed"]),
            "updated_at": _iso(t["label_printed"]),
            "tracking_company": order.carrier.upper(),
            "tracking_number": tracking,
            "tracking_numbers": [tracking],
            "shipment_status": "confirmed",
            "location_id": int(self.locations.get((order.tenant_id, order.warehouse_id), 0)) or None,
        }
        version(t["label_printed"], fulfillment_status="fulfilled", fulfillments=[fulfillment])
        order.shopify_events.append(("label_printed", t["label_printed"]))
        for status in ("in_transit", "delivered"):
            fulfillment = {**fulfillment, "shipment_status": status, "updated_at": _iso(t[status])}
            version(t[status], fulfillments=[fulfillment])
            order.shopify_events.append((status, t[status]))

    def _anomaly(self, order: SimOrder, kind: str) -> None:
        rng = self.rng
        ev = order.events
        if not ev:
            return
        if kind == "duplicate":
            for original in rng.sample(ev, min(len(ev), rng.choice((1, 2)))):
                self._seq += 1
                ev.append(
                    SimEvent(
                        original.arrives_at + timedelta(minutes=rng.uniform(1, 36 * 60)),
                        self._seq,
                        dict(original.record),
                        original.occurred_at,
                    )
                )
        elif kind == "out_of_order":
            early = [e for e in ev if e.record["event_type"] in ("pick_completed", "pack_completed", "order_paid")]
            if not early or len(ev) < 3:
                return
            victim = rng.choice(early)
            victim.arrives_at = max(e.arrives_at for e in ev) + timedelta(minutes=rng.uniform(5, 360))
        elif kind == "late_arrival":
            victim = rng.choice(ev)
            victim.arrives_at += timedelta(days=rng.uniform(1, 4))
        elif kind == "missing_scan":
            scans = [
                e
                for e in ev
                if e.record["event_type"] in ("carrier_pickup", "picked_up", "in_transit", "out_for_delivery")
            ]
            if not scans:
                return
            ev.remove(rng.choice(scans))
        elif kind == "split_identifier":
            moved = [e for e in ev if e.record["event_type"] in ("in_transit", "out_for_delivery", "delivered")]
            if not moved:
                return
            alias = f"{order.order_id}-1"
            for e in moved:
                e.record["order_id"] = alias
                e.record["event_id"] = f"{alias}-{e.record['event_type']}"
            order.aliases.append(alias)
        order.anomalies.append(kind)

    def orders(self, count: int, start: datetime, end: datetime) -> Iterator[SimOrder]:
        for created, tenant in self.creation_times(count, start, end):
            yield self.order(tenant, created)


# ----------------------------------------------------------------------------------------------------
# What can be known at a moment


def observed(order: SimOrder, until: datetime) -> tuple[list[SimEvent], list[tuple[str, datetime]]]:
    """The order's landing events that arrived by ``until`` and its Shopify-derived events known by then."""
    landing = [e for e in order.events if e.arrives_at <= until and e.occurred_at <= until]
    known_versions = [at for at, _ in order.shopify_versions if at <= until]
    horizon = max(known_versions) if known_versions else None
    shopify = [(kind, at) for kind, at in order.shopify_events if horizon is not None and at <= horizon]
    return landing, shopify


def milestones(order: SimOrder, until: datetime) -> tuple[Milestones, BillableOrder]:
    """The canonical milestones (earliest occurrence per type, DESIGN §4.1) and billable facts of an order, from
    what was observable by ``until`` under its own order id."""
    landing, shopify = observed(order, until)
    first: dict[str, datetime] = {}
    own = [e for e in landing if e.record["order_id"] == order.order_id]
    for kind, at in [(e.record["event_type"], e.occurred_at) for e in own] + shopify:
        if kind not in first or at < first[kind]:
            first[kind] = at
    handed = min((first[k] for k in ("carrier_pickup", "picked_up") if k in first), default=None)

    def earliest_value(kind: str, key: str):
        found = sorted(
            (e.occurred_at, e.record["source"], e.record["event_id"], e.record.get(key))
            for e in own
            if e.record["event_type"] == kind and e.record.get(key) is not None
        )
        return found[0][3] if found else None

    holds = []
    if "hold_placed" in first:
        holds.append((first["hold_placed"], first.get("hold_released")))
    ms = Milestones(
        order.tenant_id,
        order.order_id,
        order.warehouse_id,
        order.carrier,
        order.service_level,
        paid_at=first.get("order_paid"),
        pick_completed_at=first.get("pick_completed"),
        pack_completed_at=first.get("pack_completed"),
        handed_to_carrier_at=handed,
        delivered_at=first.get("delivered"),
        cancelled_at=first.get("order_cancelled"),
        holds=tuple(holds),
    )
    units = earliest_value("pick_completed", "units")
    if units is None:
        created_units = [e.record.get("units") for e in own if e.record["event_type"] == "order_created"]
        units = max((u for u in created_units if u is not None), default=None)
        if units is None and order.shopify_versions:
            units = sum(i["quantity"] for i in order.shopify_versions[0][1]["line_items"])
    postage = earliest_value("label_printed", "postage")
    returns = tuple(sorted(e.occurred_at for e in own if e.record["event_type"] == "return_received"))
    billable = BillableOrder(
        order.tenant_id,
        order.order_id,
        handed,
        first.get("order_cancelled"),
        units,
        earliest_value("pack_completed", "cartons"),
        Decimal(postage) if postage is not None else None,
        returns[:1],
    )
    return ms, billable


# ----------------------------------------------------------------------------------------------------
# Writing


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write atomically: a temporary name first, then a rename, so sensors never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _append_store(path: Path, versions: Iterable[dict]) -> int:
    from e2a_dagster.lib.simulator.mock_shopify import append_versions

    return append_versions(path, versions)


def simulate_history(
    reference: Reference,
    events_dir: Path,
    *,
    orders: int,
    days: int,
    seed: int = 7,
    end: datetime | None = None,
    files_per_day: bool = True,
    anomalies: float = 0.0,
    billing_dir: Path | None = None,
    ground_truth_dir: Path | None = None,
    shopify_store: Path | None = None,
    shopify_tenant: str | None = None,
    shopify_share: float = 0.5,
    billing_error_rate: float = 0.02,
    supplementary_invoices: bool = False,
    supplementary_share: float = 0.02,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Write ``orders`` orders created over the ``days`` before ``end`` (default now): landing files (one per
    arrival day), Shopify versions (when ``shopify_store`` is given), invoices (when ``billing_dir`` is given)
    and the ground truth (when ``ground_truth_dir`` is given). What has not happened or arrived by ``end`` is not
    written. ``supplementary_invoices``: each month is billed in two invoices (sim_billing.supplementary_invoices,
    ``supplementary_share`` of the lines on the second). Returns a summary."""
    began = _time.perf_counter()
    end = (end or clock.now()).astimezone(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    tag = run_tag(seed, start)
    sim = Simulator(
        reference,
        seed=seed,
        anomalies=anomalies,
        tag=tag,
        shopify_tenant=shopify_tenant if shopify_store is not None else None,
        shopify_share=shopify_share,
    )
    report = progress or (lambda stage, done, total: None)
    by_day: dict[date, list[SimEvent]] = {}
    versions: list[dict] = []
    truth_sla: list[dict] = []
    truth_orders: list[dict] = []
    billables: list[BillableOrder] = []
    counts = {"events": 0, "shopify_versions": 0, "anomalies": 0}
    step = max(1, orders // 20)
    for i, order in enumerate(sim.orders(orders, start, end), start=1):
        for event in order.events:
            if event.arrives_at > end or event.occurred_at > end:
                continue
            key = event.arrives_at.date() if files_per_day else start.date()
            by_day.setdefault(key, []).append(event)
        versions += [payload for at, payload in order.shopify_versions if at <= end]
        ms, billable = milestones(order, end)
        billables.append(billable)
        truth_sla += [s.as_record() for s in evaluate(ms, end, sim.sla)]
        if order.anomalies or order.channel == "shopify":
            truth_orders.append(
                {
                    "kind": "order",
                    "tenant_id": order.tenant_id,
                    "order_id": order.order_id,
                    "channel": order.channel,
                    "anomalies": order.anomalies,
                    "aliases": order.aliases,
                }
            )
        counts["anomalies"] += len(order.anomalies)
        if i % step == 0 or i == orders:
            report("orders", i, orders)

    # SLA credits follow the ship status the answer key gives.
    late_ship = {(r["tenant_id"], r["order_id"]) for r in truth_sla if r["stage"] == "ship" and r["status"] == "late"}
    billables = [
        b if (b.tenant_id, b.order_id) not in late_ship else BillableOrder(**{**b.__dict__, "ship_late": True})
        for b in billables
    ]

    files = []
    for n, (day, events) in enumerate(sorted(by_day.items()), start=1):
        events.sort()
        path = events_dir / f"sim-{tag}-{day:%Y%m%d}.jsonl"
        counts["events"] += write_jsonl(path, (e.record for e in events))
        files.append(path.name)
        report("files", n, len(by_day))
    if shopify_store is not None:
        versions.sort(key=lambda v: (v["updated_at"], v["id"]))
        counts["shopify_versions"] = _append_store(shopify_store, versions)

    invoices, billing_truth = [], []
    if billing_dir is not None:
        cards = RateCards()
        invoices = correct_invoices(billables, cards, end=end, run_tag=tag)
        billing_truth = inject_errors(
            invoices, billables, cards, random.Random(f"{seed}:billing"), rate=billing_error_rate
        )
        if supplementary_invoices:
            invoices += split_supplementary(
                invoices,
                billing_truth,
                random.Random(f"{seed}:supplementary"),
                end=end,
                cards=cards,
                share=supplementary_share,
            )
        write_invoices(billing_dir, invoices)

    truth_path = None
    if ground_truth_dir is not None:
        truth_path = ground_truth_dir / f"{tag}.jsonl"
        header = {
            "kind": "run",
            "format": GROUND_TRUTH_FORMAT,
            "run_tag": tag,
            "seed": seed,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "as_of": end.isoformat(),
            "orders": orders,
            "anomaly_rate": anomalies,
            "billing_error_rate": billing_error_rate,
            "shopify_tenant": sim.shopify_tenant,
            "event_files": files,
            "invoices": [inv.invoice_id for inv in invoices],
        }
        write_jsonl(
            truth_path,
            [header, *truth_orders, *truth_sla, *(invoice_truth(i) for i in invoices), *billing_truth],
        )
    status_counts: dict[str, int] = {}
    for r in truth_sla:
        status_counts[r["status"]] = status_counts.get(r["status"], 0) + 1
    return {
        "run_tag": tag,
        "orders": orders,
        "events": counts["events"],
        "files": len(files),
        "shopify_versions": counts["shopify_versions"],
        "anomalies_injected": counts["anomalies"],
        "invoices": len(invoices),
        "billing_errors": len(billing_truth),
        "sla_rows": len(truth_sla),
        "sla_status": status_counts,
        "ground_truth": str(truth_path) if truth_path else None,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seconds": round(_time.perf_counter() - began, 2),
    }


class LiveFeed:
    """Drips new orders into the landing zone (and the mock store) as time passes, for ``e2a dev``.

    The simulated clock starts ``backlog`` before the feed and runs ``speed`` times faster than the wall clock
    until it has caught up with it, then runs in real time: events are never dated in the future. Each
    ``tick`` writes the events that have arrived since the previous tick (one file) and appends the Shopify
    versions that now exist."""

    def __init__(
        self,
        reference: Reference,
        events_dir: Path,
        *,
        orders_per_hour: float = 60,
        seed: int = 11,
        anomalies: float = 0.02,
        shopify_store: Path | None = None,
        shopify_tenant: str | None = None,
        speed: float = 1.0,
        backlog: timedelta = timedelta(0),
        now: datetime | None = None,
    ):
        real = (now or clock.now()).astimezone(UTC)
        self.origin_real = real
        self.origin_sim = real - backlog
        self.speed = max(1.0, speed)
        self.sim = Simulator(
            reference,
            seed=seed,
            anomalies=anomalies,
            tag=run_tag(seed, real, live=True),
            shopify_tenant=shopify_tenant if shopify_store else None,
        )
        self.events_dir = events_dir
        self.shopify_store = shopify_store
        self.rate = orders_per_hour / 3600
        self.pending: list[SimEvent] = []
        self.pending_versions: list[tuple[datetime, int, dict]] = []
        self.last = self.origin_sim
        self.next_order_at = self.last + self._gap()

    def _gap(self) -> timedelta:
        return timedelta(seconds=self.sim.rng.expovariate(self.rate) if self.rate > 0 else math.inf)

    def sim_now(self, real: datetime) -> datetime:
        return min(real, self.origin_sim + (real - self.origin_real) * self.speed)

    def tick(self, now: datetime | None = None) -> int:
        now = self.sim_now((now or clock.now()).astimezone(UTC))
        while self.next_order_at <= now:
            tenant = self.sim.rng.choice(self.sim.tenants)
            order = self.sim.order(tenant, self.next_order_at)
            for event in order.events:
                heapq.heappush(self.pending, event)
            for at, payload in order.shopify_versions:
                heapq.heappush(self.pending_versions, (at, payload["id"], payload))
            self.next_order_at += self._gap()
        due = []
        while self.pending and self.pending[0].arrives_at <= now:
            due.append(heapq.heappop(self.pending))
        versions = []
        while self.pending_versions and self.pending_versions[0][0] <= now:
            versions.append(heapq.heappop(self.pending_versions)[2])
        self.last = now
        if versions and self.shopify_store is not None:
            _append_store(self.shopify_store, versions)
        if not due:
            return 0
        name = f"live-{self.sim.tag}-{now:%Y%m%dT%H%M%S}.jsonl"
        return write_jsonl(self.events_dir / name, (e.record for e in due))
