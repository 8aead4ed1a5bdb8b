"""Shopify Admin REST source (DESIGN §4.2): a client for ``orders.json`` and the pull into ``raw.shopify_orders``.

- Client: ``X-Shopify-Access-Token`` header, ``Link: <…page_info=…>; rel="next"`` pagination, ``429`` honoured
  through ``Retry-After``, 5xx and network errors retried with exponential backoff and jitter, timeouts on every
  request. 401/403/404 are configuration problems and raise at once with a message that says what to fix. The
  token is only ever put in a request header: it is never logged, stored or part of an error message.
- Pull: pages from ``updated_at_min = high-water mark − overlap``. Every page is committed in one transaction
  together with the source cursor (``ops.source_cursors``): the order versions (``ON CONFLICT DO NOTHING`` on
  (shop, order_id, updated_at)), the rejected records, and the position (next page URL; the high-water mark
  moves only when the last page is in). A killed run resumes at the committed page; re-fetching is harmless.
- Bad data never stops the pull and is never dropped: an order that fails validation goes to
  ``ops.rejected_records`` with its page URL and index as location; a page that is not an ``{"orders": [...]}``
  JSON object goes there whole, and the high-water mark does not move past a run that had one, so the next
  pull fetches that range again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import httpx
import psycopg
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from e2a_dagster.lib.core.database import raw_connection, with_db_retries
from e2a_dagster.lib.ingestion.events import PROMISES, Fault, Rejected, faults_from_validation, normalize_promise
from e2a_dagster.lib.ingestion.ingest import Rejection, record_rejections

log = logging.getLogger(__name__)

SOURCE = "shopify"
DEFAULT_API_VERSION = "2024-10"
PAGE_SIZE = 250

# ----------------------------------------------------------------------------------------------------
# Configuration and errors


class ShopifyError(RuntimeError):
    """A Shopify request failed for a reason retrying will not fix (the message says what to do)."""


class ShopifyConfigError(ShopifyError):
    """E2A_SHOPIFY_* is missing or wrong."""


class ShopifyAuthError(ShopifyError):
    """401/403: the token is wrong or lacks the ``read_orders`` scope."""


class ShopifyUnavailable(RuntimeError):
    """The shop did not answer usefully after every retry (network, timeouts, 5xx, rate limit): transient."""


@dataclass(frozen=True)
class ShopifyConfig:
    shop_url: str
    token: str = field(repr=False)
    tenant_id: str
    api_version: str = DEFAULT_API_VERSION
    page_size: int = PAGE_SIZE
    overlap: timedelta = timedelta(minutes=10)
    timeout: float = 30.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 60.0

    @property
    def shop(self) -> str:
        """The shop's identity in tables: its base URL without trailing slash (never the token)."""
        return self.shop_url.rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> ShopifyConfig:
        missing = [n for n in ("E2A_SHOPIFY_URL", "E2A_SHOPIFY_TOKEN", "E2A_SHOPIFY_TENANT") if not environ.get(n)]
        if missing:
            raise ShopifyConfigError(f"Shopify is not configured: set {', '.join(missing)}")
        url = environ["E2A_SHOPIFY_URL"].strip()
        if urlsplit(url).scheme not in ("http", "https"):
            raise ShopifyConfigError(f"E2A_SHOPIFY_URL must be an http(s) URL, got {url!r}")
        kwargs: dict[str, Any] = {}
        if environ.get("E2A_SHOPIFY_API_VERSION"):
            kwargs["api_version"] = environ["E2A_SHOPIFY_API_VERSION"]
        kwargs.update(overrides)
        return cls(
            shop_url=url,
            token=environ["E2A_SHOPIFY_TOKEN"],
            tenant_id=environ["E2A_SHOPIFY_TENANT"],
            **kwargs,
        )


# ----------------------------------------------------------------------------------------------------
# Client


@dataclass
class Page:
    url: str
    status: int
    text: str
    next_url: str | None
    orders: list[Any] | None  # None = the body is not an {"orders": [...]} object
    error: str | None = None


_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    if not header:
        return None
    for url, rel in _LINK_RE.findall(header):
        if rel == "next":
            return url
    return None


def parse_page_body(text: str) -> tuple[list[Any] | None, str | None]:
    """(orders, error): the orders of a page body, or None and why it is malformed."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        return None, f"page is not valid JSON: {exc}"
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return body["orders"], None
    if isinstance(body, dict) and isinstance(body.get("order"), dict):  # a single-order document
        return [body["order"]], None
    return None, "page is not a JSON object with an 'orders' list"


class ShopifyClient:
    """A small, strict client for ``GET /admin/api/{version}/orders.json``."""

    def __init__(
        self,
        config: ShopifyConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.config = config
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.waits: list[tuple[str, float]] = []  # (reason, seconds): what the retries cost, for metadata/tests
        self.requests = 0
        self._http = httpx.Client(
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            headers={"X-Shopify-Access-Token": config.token, "Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ShopifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def orders_url(self, updated_at_min: datetime | None) -> str:
        params: dict[str, str] = {"status": "any", "limit": str(self.config.page_size)}
        if updated_at_min is not None:
            params["updated_at_min"] = updated_at_min.isoformat()
        return f"{self.config.shop}/admin/api/{self.config.api_version}/orders.json?{urlencode(params)}"

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.config.backoff_max, self.config.backoff_base * (2**attempt))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)  # "equal jitter"

    def _wait(self, reason: str, seconds: float) -> None:
        self.waits.append((reason, seconds))
        log.info("shopify: %s, retrying in %.2fs", reason, seconds)
        self._sleep(seconds)

    def get_page(self, url: str) -> Page:
        """One page, with retries for what is transient. Raises ShopifyAuthError / ShopifyError /
        ShopifyUnavailable; a 200 with a body that is not an orders page comes back as ``Page(orders=None)``."""
        last = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            final = attempt == self.config.max_retries
            try:
                self.requests += 1
                resp = self._http.get(url)
            except httpx.TimeoutException as exc:
                last = f"timeout ({type(exc).__name__}) after {self.config.timeout}s"
            except httpx.TransportError as exc:
                last = f"network error ({type(exc).__name__}: {exc})"
            else:
                status = resp.status_code
                if status == 200:
                    orders, error = parse_page_body(resp.text)
                    return Page(url, status, resp.text, next_link(resp.headers.get("link")), orders, error)
                if status == 401:
                    raise ShopifyAuthError(
                        f"HTTP 401 from {self.config.shop}: the access token was rejected (check E2A_SHOPIFY_TOKEN)"
                    )
                if status == 403:
                    raise ShopifyAuthError(
                        f"HTTP 403 from {self.config.shop}: the token may not read orders "
                        "(the app needs the read_orders scope)"
                    )
                if status == 429:
                    last = "rate limited (HTTP 429)"
                    if not final:
                        self._wait(last, self._retry_after(resp, attempt))
                        continue
                elif status >= 500:
                    last = f"HTTP {status} from the shop"
                else:
                    excerpt = resp.text[:200].replace("\n", " ")
                    hint = " (check E2A_SHOPIFY_URL and the API version)" if status == 404 else ""
                    raise ShopifyError(f"HTTP {status} for {url}{hint}: {excerpt}")
            if not final:
                self._wait(last, self._backoff(attempt))
        raise ShopifyUnavailable(f"{self.config.shop} unavailable after {self.config.max_retries + 1} attempts: {last}")

    def _retry_after(self, resp: httpx.Response, attempt: int) -> float:
        header = resp.headers.get("retry-after")
        try:
            seconds = float(header) if header is not None else self._backoff(attempt)
        except ValueError:
            seconds = self._backoff(attempt)
        return max(0.0, min(seconds, self.config.max_retry_after))


# ----------------------------------------------------------------------------------------------------
# Validation of one order (only what staging reads must be well-formed; everything else is kept as is)


_NUL = re.compile(r"\\u0000|\x00")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _LineItem(_Loose):
    quantity: Annotated[int, Field(ge=0)] | None = None


class _ShippingLine(_Loose):
    code: str | None = None
    title: str | None = None


class _Fulfillment(_Loose):
    id: int | str | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    location_id: int | str | None = None
    status: str | None = None
    shipment_status: str | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None


class ShopifyOrder(_Loose):
    id: int | Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]
    created_at: AwareDatetime
    updated_at: AwareDatetime
    processed_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    name: str | None = None
    financial_status: str | None = None
    location_id: int | str | None = None
    line_items: list[_LineItem] = []
    shipping_lines: list[_ShippingLine] = []
    fulfillments: list[_Fulfillment] = []
    # The order's own promise, where the shop (or the marketplace app that created the order) writes one: a note
    # attribute named ``promised_ship_by`` / ``promised_deliver_by``, in the form of the landing-zone field
    # (lib/events.normalize_promise). stg_shopify__orders reads it; a bad value sends the order to the DLQ.
    # Anything else in note_attributes (null, odd entries) is the shop's business, kept and not judged.
    note_attributes: Any = None

    @field_validator("note_attributes")
    @classmethod
    def _promises(cls, attributes: Any) -> Any:
        for attribute in attributes if isinstance(attributes, list) else []:
            name = attribute.get("name") if isinstance(attribute, dict) else None
            name = name.strip().lower() if isinstance(name, str) else None
            if name in PROMISES:
                try:
                    normalize_promise(attribute.get("value"))
                except PydanticCustomError as exc:
                    raise PydanticCustomError(exc.type, f"{name} {exc.message()}") from None
        return attributes


def validate_order(raw: Any) -> ShopifyOrder:
    """Raises ``Rejected`` with a specific code and message."""
    if not isinstance(raw, dict):
        raise Rejected([Fault("malformed_order", f"order is not a JSON object (got {type(raw).__name__})")])
    try:
        order = ShopifyOrder.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(faults_from_validation(exc)) from None
    if _NUL.search(json.dumps(raw)):
        raise Rejected([Fault("invalid_text", "order contains a NUL character, which PostgreSQL jsonb cannot hold")])
    return order


# ----------------------------------------------------------------------------------------------------
# Cursor


@dataclass
class CursorState:
    high_water_mark: datetime | None = None  # max updated_at of a completed pull
    next_page: str | None = None  # committed position of a pull in progress
    run_max: datetime | None = None  # max updated_at seen by the pull in progress
    run_malformed: int = 0  # malformed pages met by the pull in progress

    def dump(self) -> str:
        return json.dumps(
            {
                "high_water_mark": self.high_water_mark.isoformat() if self.high_water_mark else None,
                "next_page": self.next_page,
                "run_max": self.run_max.isoformat() if self.run_max else None,
                "run_malformed": self.run_malformed,
            }
        )

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> CursorState:
        if not data:
            return cls()
        parse = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
        return cls(
            parse(data.get("high_water_mark")),
            data.get("next_page"),
            parse(data.get("run_max")),
            int(data.get("run_malformed") or 0),
        )


def read_cursor(engine: sa.Engine, shop: str) -> CursorState:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select state from ops.source_cursors where source = :s and source_key = :k"),
            {"s": SOURCE, "k": shop},
        ).first()
    return CursorState.load(row[0] if row else None)


def _write_cursor(cur: psycopg.Cursor, shop: str, tenant_id: str, state: CursorState) -> None:
    cur.execute(
        """
        insert into ops.source_cursors (source, source_key, tenant_id, state, updated_at)
        values (%s, %s, %s, %s, now())
        on conflict (source, source_key) do update
           set state = excluded.state, tenant_id = excluded.tenant_id, updated_at = now()
        """,
        (SOURCE, shop, tenant_id, state.dump()),
    )


# ----------------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class OrderRow:
    shop: str
    order_id: str
    updated_at: datetime
    tenant_id: str
    order_name: str | None
    page: str
    payload: str


def order_row(raw: dict, order: ShopifyOrder, *, shop: str, tenant_id: str, page: str) -> OrderRow:
    return OrderRow(shop, str(order.id), order.updated_at, tenant_id, order.name, page, json.dumps(raw))


def rows_from_page(
    page_url: str, orders: list[Any], *, shop: str, tenant_id: str
) -> tuple[list[OrderRow], list[Rejection]]:
    rows: list[OrderRow] = []
    rejections: list[Rejection] = []
    for index, raw in enumerate(orders):
        try:
            order = validate_order(raw)
        except Rejected as exc:
            rejections.append(Rejection(f"{page_url}#orders[{index}]", json.dumps(raw), exc))
        else:
            rows.append(order_row(raw, order, shop=shop, tenant_id=tenant_id, page=page_url))
    return rows, rejections


def insert_orders(cur: psycopg.Cursor, rows: list[OrderRow]) -> int:
    """Insert order versions; a version already stored is a no-op. Returns the number inserted."""
    inserted = 0
    for row in rows:
        cur.execute(
            """
            insert into raw.shopify_orders (shop, order_id, updated_at, tenant_id, order_name, page, payload)
            values (%s, %s, %s, %s, %s, %s, %s::jsonb)
            on conflict (shop, order_id, updated_at) do nothing
            """,
            (row.shop, row.order_id, row.updated_at, row.tenant_id, row.order_name, row.page, row.payload),
        )
        inserted += cur.rowcount
    return inserted


@dataclass
class PullResult:
    shop: str
    pages: int = 0
    orders: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    malformed_pages: int = 0
    resumed: bool = False
    high_water_mark: datetime | None = None
    reject_codes: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "order_versions_seen": self.orders,
            "order_versions_loaded": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "malformed_pages": self.malformed_pages,
            "resumed": self.resumed,
            "high_water_mark": self.high_water_mark.isoformat() if self.high_water_mark else None,
        }


def pull_orders(
    engine: sa.Engine,
    client: ShopifyClient,
    *,
    tenants: set[str] | frozenset[str] | Mapping[str, Any] | None = None,
    max_pages: int | None = None,
    on_page: Callable[[PullResult], None] | None = None,
    db_retry_base: float = 0.5,
) -> PullResult:
    """Pull every order version updated since the committed high-water mark (minus the overlap).

    ``on_page`` runs after each committed page (tests use it to kill the process mid-run). ``max_pages`` bounds
    one call; the committed cursor lets the next call continue where this one stopped."""
    config = client.config
    shop = config.shop
    if tenants is not None and config.tenant_id not in tenants:
        raise ShopifyConfigError(f"E2A_SHOPIFY_TENANT={config.tenant_id!r} is not a tenant in seeds/tenants.csv")
    state = with_db_retries(lambda: read_cursor(engine, shop), base=db_retry_base)
    result = PullResult(shop=shop, high_water_mark=state.high_water_mark)
    if state.next_page:
        url = state.next_page
        result.resumed = True
    else:
        since = state.high_water_mark - config.overlap if state.high_water_mark else None
        url = client.orders_url(since)
        state.run_max, state.run_malformed = None, 0

    while url:
        try:
            page = client.get_page(url)
        except ShopifyError:
            if not result.resumed or result.pages:
                raise
            # A committed page_info link may have expired: start the interrupted pull again from the mark.
            log.warning("shopify: resuming at %s failed; restarting from the high-water mark", url)
            result.resumed = False
            state = CursorState(state.high_water_mark)
            since = state.high_water_mark - config.overlap if state.high_water_mark else None
            url = client.orders_url(since)
            continue
        result.pages += 1
        if page.orders is None:
            rows: list[OrderRow] = []
            fault = Rejected([Fault("malformed_page", f"{page.error} (HTTP {page.status}, {len(page.text)} bytes)")])
            rejections = [Rejection(page.url, page.text, fault)]
            state.run_malformed += 1
            result.malformed_pages += 1
        else:
            rows, rejections = rows_from_page(page.url, page.orders, shop=shop, tenant_id=config.tenant_id)
            result.orders += len(page.orders)
        for row in rows:
            if state.run_max is None or row.updated_at > state.run_max:
                state.run_max = row.updated_at
        if page.next_url is None:
            if (
                state.run_malformed == 0
                and state.run_max is not None
                and (state.high_water_mark is None or state.run_max > state.high_water_mark)
            ):
                state.high_water_mark = state.run_max
            state.next_page, state.run_max, state.run_malformed = None, None, 0
        else:
            state.next_page = page.next_url
        snapshot = CursorState(state.high_water_mark, state.next_page, state.run_max, state.run_malformed)

        def commit(rows=rows, rejections=rejections, snapshot=snapshot) -> int:
            with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
                inserted = insert_orders(cur, rows)
                record_rejections(cur, SOURCE, rejections)
                _write_cursor(cur, shop, config.tenant_id, snapshot)
            return inserted

        inserted = with_db_retries(commit, base=db_retry_base)
        result.inserted += inserted
        result.duplicates += len(rows) - inserted
        result.rejected += len(rejections)
        for rej in rejections:
            result.reject_codes[rej.fault.code] = result.reject_codes.get(rej.fault.code, 0) + 1
        result.high_water_mark = state.high_water_mark
        if on_page is not None:
            on_page(result)
        url = page.next_url
        if url and max_pages is not None and result.pages >= max_pages:
            break
    log.info("shopify pull %s: %s", shop, result.as_metadata())
    return result


# ----------------------------------------------------------------------------------------------------
# Loading documents that did not come through the client (fixtures, DLQ replay)


def load_documents(engine: sa.Engine, documents: list[tuple[str, str]], *, shop: str, tenant_id: str) -> PullResult:
    """Load ``(location, text)`` documents (an orders page or a single-order document) through the same
    validation and idempotent insert as a pull; bad ones go to the DLQ. The cursor is not touched."""
    result = PullResult(shop=shop)
    for location, text in documents:
        orders, error = parse_page_body(text)
        if orders is None:
            rows: list[OrderRow] = []
            rejections = [Rejection(location, text, Rejected([Fault("malformed_page", error or "malformed")]))]
        else:
            rows, rejections = rows_from_page(location, orders, shop=shop, tenant_id=tenant_id)
            result.orders += len(orders)

        def commit(rows=rows, rejections=rejections) -> int:
            with raw_connection(engine) as conn, conn.transaction(), conn.cursor() as cur:
                inserted = insert_orders(cur, rows)
                record_rejections(cur, SOURCE, rejections)
            return inserted

        inserted = with_db_retries(commit)
        result.pages += 1
        result.inserted += inserted
        result.duplicates += len(rows) - inserted
        result.rejected += len(rejections)
    return result


# ----------------------------------------------------------------------------------------------------
# Sensor support: is there anything to pull?


@dataclass(frozen=True)
class Probe:
    run_key: str | None  # None = nothing to do
    reason: str


def probe(engine: sa.Engine, client: ShopifyClient) -> Probe:
    """Decide whether a pull is due, cheaply: an interrupted pull resumes; otherwise one ``limit=1`` request asks
    for an order updated after the high-water mark. Raises what ``get_page`` raises."""
    shop = client.config.shop
    state = read_cursor(engine, shop)
    if state.next_page:
        digest = hashlib.sha256(state.next_page.encode()).hexdigest()[:16]
        return Probe(f"shopify:{shop}:resume:{digest}", "an interrupted pull resumes at its committed page")
    since = state.high_water_mark + timedelta(seconds=1) if state.high_water_mark else None
    url = client.orders_url(since).replace(f"limit={client.config.page_size}", "limit=1")
    page = client.get_page(url)
    if page.orders is None:
        return Probe(
            f"shopify:{shop}:malformed:{hashlib.sha256(page.text.encode()).hexdigest()[:16]}",
            "the shop answered with a malformed page; the pull records it",
        )
    if not page.orders:
        mark = state.high_water_mark.isoformat() if state.high_water_mark else "the beginning"
        return Probe(None, f"no order updated in {shop} since {mark}")
    first = page.orders[0] if isinstance(page.orders[0], dict) else {}
    mark = state.high_water_mark.isoformat() if state.high_water_mark else "start"
    return Probe(
        f"shopify:{shop}:{mark}:{first.get('id')}:{first.get('updated_at')}",
        "orders updated since the high-water mark",
    )


# ----------------------------------------------------------------------------------------------------
# Fulfillment documents (``{"fulfillment": …}``, ``{"fulfillment_event": …}``) as canonical events

# Shopify shipment / fulfillment-event statuses -> canonical event types (others carry no milestone).
SHIPMENT_STATUS_EVENTS = {
    "label_printed": "label_printed",
    "label_purchased": "label_printed",
    "in_transit": "in_transit",
    "out_for_delivery": "out_for_delivery",
    "attempted_delivery": "delivery_attempted",
    "delivered": "delivered",
    "failure": "delivery_exception",
}
VOID_FULFILLMENT_STATUSES = frozenset({"failure", "cancelled", "error"})
_NO_CARRIER = frozenset({"", "null", "null-company", "none", "other"})


def carrier_name(tracking_company: str | None) -> str | None:
    """A fulfillment's ``tracking_company`` as a carrier code (lower case); placeholders mean none."""
    value = (tracking_company or "").strip().lower()
    return None if value in _NO_CARRIER else value


def fulfillment_records(document: Mapping[str, Any], tenant_id: str) -> list[dict[str, Any]]:
    """Canonical event records (DESIGN §4.1, source ``shopify``) for a fulfillment or fulfillment-event document.

    A fulfillment with a tracking number that did not fail is a ``label_printed`` at its ``created_at``; a
    fulfillment event is the carrier status it reports at ``happened_at``. The records still go through the
    canonical validation (bad ones reach the DLQ like any landing record)."""
    records: list[dict[str, Any]] = []
    if isinstance(document.get("fulfillment"), Mapping):
        f = document["fulfillment"]
        tracking = f.get("tracking_number") or next(iter(f.get("tracking_numbers") or []), None)
        if tracking and str(f.get("status") or "").lower() not in VOID_FULFILLMENT_STATUSES:
            records.append(
                {
                    "event_id": f"shopify:{f.get('order_id')}:f{f.get('id')}:label_printed",
                    "tenant_id": tenant_id,
                    "source": SOURCE,
                    "event_type": "label_printed",
                    "order_id": str(f.get("order_id")),
                    "occurred_at": f.get("created_at"),
                    "carrier": carrier_name(f.get("tracking_company")),
                    "tracking_number": str(tracking),
                    "attributes": {"shopify_fulfillment_id": f.get("id"), "status": f.get("status")},
                }
            )
    if isinstance(document.get("fulfillment_event"), Mapping):
        e = document["fulfillment_event"]
        event_type = SHIPMENT_STATUS_EVENTS.get(str(e.get("status") or "").lower())
        if event_type:
            records.append(
                {
                    "event_id": f"shopify:fe{e.get('id')}",
                    "tenant_id": tenant_id,
                    "source": SOURCE,
                    "event_type": event_type,
                    "order_id": str(e.get("order_id")),
                    "occurred_at": e.get("happened_at"),
                    "attributes": {
                        "shopify_fulfillment_id": e.get("fulfillment_id"),
                        "status": e.get("status"),
                    },
                }
            )
    return records
