"""A deterministic generator of realistic order histories, written as canonical events to the landing zone.

Every order gets a timeline: created → paid → (released) → pick started/completed → packed → label printed →
handed to the carrier → in transit → delivered, with business-hours warehouse work in the warehouse's time
zone, a late tail, and carrier transit by service level. Same seed, same output."""

from __future__ import annotations

import heapq
import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from e2a_dagster.lib.reference import Reference

SERVICE_MIX = (("ground", 0.7), ("express", 0.22), ("overnight", 0.08))
TRANSIT_DAYS = {"ground": 5, "express": 2, "overnight": 1}
CARRIERS = {"USD": ("ups", "fedex", "usps"), "EUR": ("dhl", "dpd")}


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: str
    tz: ZoneInfo
    opens: time
    closes: time
    cutoff: time

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Warehouse:
        return cls(
            row["warehouse_id"],
            ZoneInfo(row["time_zone"]),
            time.fromisoformat(row["open_time"]),
            time.fromisoformat(row["close_time"]),
            time.fromisoformat(row["cutoff_time"]),
        )

    def is_workday(self, day: date) -> bool:
        return day.weekday() < 5

    def next_working_instant(self, at: datetime) -> datetime:
        """``at`` if the warehouse is open then, else its next opening."""
        local = at.astimezone(self.tz)
        day = local.date()
        while True:
            if self.is_workday(day):
                opening = datetime.combine(day, self.opens, self.tz)
                closing = datetime.combine(day, self.closes, self.tz)
                if local < opening:
                    return opening
                if local < closing:
                    return local
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.tz)

    def add_working_minutes(self, at: datetime, minutes: float) -> datetime:
        current = self.next_working_instant(at)
        remaining = timedelta(minutes=minutes)
        while True:
            closing = datetime.combine(current.date(), self.closes, self.tz)
            if current + remaining <= closing:
                return current + remaining
            remaining -= closing - current
            current = self.next_working_instant(closing + timedelta(seconds=1))


@dataclass(order=True)
class SimEvent:
    occurred_at: datetime
    seq: int
    record: dict = field(compare=False)


class Simulator:
    """Orders for every tenant in ``seeds/`` over a time window, as event records."""

    def __init__(self, reference: Reference, seed: int = 7, anomalies: float = 0.0):
        self.reference = reference
        self.rng = random.Random(seed)
        self.anomalies = anomalies
        self.warehouses = {wid: Warehouse.from_row(row) for wid, row in reference.warehouses.items()}
        self.tenants = sorted(reference.tenants)
        self._seq = 0
        self._order_no = 0

    def _event(self, tenant: str, order_id: str, event_type: str, source: str, at: datetime, **extra) -> SimEvent:
        self._seq += 1
        record = {
            "event_id": f"{order_id}-{event_type}",
            "tenant_id": tenant,
            "source": source,
            "event_type": event_type,
            "order_id": order_id,
            "occurred_at": at.isoformat(timespec="seconds"),
        }
        record.update({k: v for k, v in extra.items() if v is not None})
        return SimEvent(at, self._seq, record)

    def order_events(self, tenant: str, created_at: datetime) -> list[SimEvent]:
        rng = self.rng
        self._order_no += 1
        order_id = f"{tenant[:2].upper()}{created_at:%y%m%d}-{self._order_no:06d}"
        wh = self.warehouses[self.reference.default_warehouse(tenant)]
        currency = self.reference.tenants[tenant]["currency"]
        carrier = rng.choice(CARRIERS.get(currency, ("ups",)))
        service = rng.choices([s for s, _ in SERVICE_MIX], [w for _, w in SERVICE_MIX])[0]
        units = rng.choice((1, 1, 1, 2, 2, 3, 4, 6))
        lines = min(units, rng.choice((1, 1, 2, 3)))
        common = {"warehouse_id": wh.warehouse_id}
        ev = [self._event(tenant, order_id, "order_created", "oms", created_at, units=units, lines=lines,
                          service_level=service, **common)]
        paid = created_at + timedelta(minutes=rng.expovariate(1 / 8))
        ev.append(self._event(tenant, order_id, "order_paid", "oms", paid))
        if rng.random() < 0.02:
            ev.append(self._event(tenant, order_id, "order_cancelled", "oms",
                                  paid + timedelta(minutes=rng.uniform(5, 90))))
            return ev
        # Warehouse work, in business minutes, with a late tail.
        late = rng.random() < 0.08
        pick_start = wh.add_working_minutes(paid, rng.expovariate(1 / 25) + (rng.uniform(90, 400) if late else 0))
        ev.append(self._event(tenant, order_id, "pick_started", "wms", pick_start, **common))
        pick_done = wh.add_working_minutes(pick_start, rng.uniform(5, 35) * max(1, lines))
        ev.append(self._event(tenant, order_id, "pick_completed", "wms", pick_done, units=units, lines=lines,
                              **common))
        pack_done = wh.add_working_minutes(pick_done, rng.uniform(8, 60) + (rng.uniform(120, 300) if late else 0))
        cartons = 1 if units < 4 else 2
        ev.append(self._event(tenant, order_id, "pack_completed", "wms", pack_done, cartons=cartons, **common))
        label = wh.add_working_minutes(pack_done, rng.uniform(2, 20))
        postage = Decimal(str(round(rng.uniform(4.5, 9.5) * TRANSIT_DAYS_FACTOR[service], 2)))
        ev.append(self._event(tenant, order_id, "label_printed", "wms", label, carrier=carrier,
                              service_level=service, tracking_number=f"{carrier.upper()}{rng.randrange(10**11):011d}",
                              postage=str(postage), **common))
        # The carrier collects at the end of the working day the label was printed on.
        local = label.astimezone(wh.tz)
        pickup_day = local.date()
        pickup = datetime.combine(pickup_day, wh.closes, wh.tz) - timedelta(minutes=rng.uniform(10, 70))
        if pickup < label:
            pickup = wh.next_working_instant(datetime.combine(pickup_day + timedelta(days=1), time(0), wh.tz))
            pickup = datetime.combine(pickup.date(), wh.closes, wh.tz) - timedelta(minutes=rng.uniform(10, 70))
        ev.append(self._event(tenant, order_id, "carrier_pickup", "wms", pickup, carrier=carrier, **common))
        ev.append(self._event(tenant, order_id, "picked_up", "carrier", pickup + timedelta(minutes=rng.uniform(1, 15)),
                              carrier=carrier, service_level=service))
        ev.append(self._event(tenant, order_id, "in_transit", "carrier", pickup + timedelta(hours=rng.uniform(3, 9)),
                              carrier=carrier))
        days = TRANSIT_DAYS[service] + (rng.choice((1, 2)) if rng.random() < 0.06 else 0) - (
            1 if rng.random() < 0.3 and TRANSIT_DAYS[service] > 1 else 0
        )
        delivery_day = pickup.astimezone(wh.tz).date()
        while days > 0:
            delivery_day += timedelta(days=1)
            if delivery_day.weekday() < 5:
                days -= 1
        delivered = datetime.combine(delivery_day, time(9), wh.tz) + timedelta(minutes=rng.uniform(0, 600))
        ev.append(self._event(tenant, order_id, "out_for_delivery", "carrier",
                              delivered - timedelta(hours=rng.uniform(1, 4)), carrier=carrier))
        ev.append(self._event(tenant, order_id, "delivered", "carrier", delivered, carrier=carrier))
        return ev

    def orders(self, count: int, start: datetime, end: datetime) -> Iterator[list[SimEvent]]:
        """``count`` orders created between ``start`` and ``end``, spread over tenants and daytime hours."""
        span = (end - start).total_seconds()
        for _ in range(count):
            tenant = self.rng.choice(self.tenants)
            created = start + timedelta(seconds=self.rng.uniform(0, span))
            yield self.order_events(tenant, created)


TRANSIT_DAYS_FACTOR = {"ground": 1.0, "express": 1.8, "overnight": 3.2}


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


def simulate_history(
    reference: Reference,
    events_dir: Path,
    *,
    orders: int,
    days: int,
    seed: int = 7,
    end: datetime | None = None,
    files_per_day: bool = True,
) -> dict:
    """Write ``orders`` orders created over the ``days`` before ``end`` (default now) into ``events_dir``,
    one JSONL file per day of occurrence. Events after ``end`` are not written (they have not happened yet)."""
    end = end or datetime.now().astimezone()
    start = end - timedelta(days=days)
    sim = Simulator(reference, seed=seed)
    by_day: dict[date, list[SimEvent]] = {}
    written = 0
    for timeline in sim.orders(orders, start, end):
        for event in timeline:
            if event.occurred_at > end:
                continue
            key = event.occurred_at.date() if files_per_day else start.date()
            by_day.setdefault(key, []).append(event)
    for day, events in sorted(by_day.items()):
        events.sort()
        path = events_dir / f"sim-{seed}-{start:%Y%m%dT%H%M}-{day:%Y%m%d}.jsonl"
        written += write_jsonl(path, (e.record for e in events))
    return {"orders": orders, "events": written, "files": len(by_day), "start": start.isoformat(),
            "end": end.isoformat()}


class LiveFeed:
    """Drips new orders into the landing zone as time passes (for ``e2a dev``): each tick writes the events
    that have happened since the last one."""

    def __init__(self, reference: Reference, events_dir: Path, *, orders_per_hour: float = 60, seed: int = 11):
        self.sim = Simulator(reference, seed=seed)
        self.events_dir = events_dir
        self.rate = orders_per_hour / 3600
        self.pending: list[SimEvent] = []
        self.last = datetime.now().astimezone()

    def tick(self, now: datetime | None = None) -> int:
        now = now or datetime.now().astimezone()
        elapsed = (now - self.last).total_seconds()
        new_orders = sum(1 for _ in range(int(elapsed)) if self.sim.rng.random() < self.rate)
        for timeline in self.sim.orders(new_orders, self.last, now):
            for event in timeline:
                heapq.heappush(self.pending, event)
        due = []
        while self.pending and self.pending[0].occurred_at <= now:
            due.append(heapq.heappop(self.pending))
        self.last = now
        if not due:
            return 0
        return write_jsonl(self.events_dir / f"live-{now:%Y%m%dT%H%M%S}.jsonl", (e.record for e in due))
