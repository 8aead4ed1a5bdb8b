"""A mock Shopify store: the ``orders.json`` contract of the Admin REST API, served from simulated orders.

It behaves like the real endpoint where E²A's client cares: ``X-Shopify-Access-Token`` auth (401 otherwise),
``updated_at_min``/``status``/``limit`` filters, cursor pagination through ``Link: <…page_info=…>; rel="next"``
(a ``page_info`` request ignores the other filters, as Shopify does), and a leaky-bucket rate limit answering
``429`` with ``Retry-After``. Each order is served in its latest version whose ``updated_at`` has passed.

Orders come from a JSONL file of order versions (``E2A_HOME/mock_shopify/orders.jsonl``) that the simulator
appends to; the store reads what was appended since the last request."""

from __future__ import annotations

import base64
import bisect
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_LIMIT = 250


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


class OrderStore:
    """Order versions by id; optionally fed from an append-only JSONL file."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._offset = 0
        self._versions: dict[int, list[tuple[datetime, dict]]] = {}
        self._lock = threading.Lock()

    def add(self, versions: Iterable[dict]) -> None:
        with self._lock:
            for order in versions:
                entries = self._versions.setdefault(int(order["id"]), [])
                bisect.insort(entries, (_ts(order["updated_at"]), order), key=lambda e: e[0])

    def _refresh(self) -> None:
        if self.path is None or not self.path.exists():
            return
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next request
        if end == 0:
            return
        self._offset += end
        self.add(json.loads(line) for line in data[:end].splitlines() if line.strip())

    def current(self, now: datetime, updated_at_min: datetime | None, after_id: int, limit: int) -> list[dict]:
        """Latest visible version of each order with updated_at >= updated_at_min, by id, after ``after_id``."""
        self._refresh()
        out: list[dict] = []
        with self._lock:
            for order_id in sorted(i for i in self._versions if i > after_id):
                entries = self._versions[order_id]
                pos = bisect.bisect_right(entries, now, key=lambda e: e[0])
                if pos == 0:
                    continue
                stamp, order = entries[pos - 1]
                if updated_at_min is not None and stamp < updated_at_min:
                    continue
                out.append(order)
                if len(out) >= limit:
                    break
        return out


@dataclass
class RateLimit:
    """Shopify's leaky bucket: ``capacity`` calls, leaking ``leak_per_second``."""

    capacity: int = 40
    leak_per_second: float = 2.0
    retry_after: float = 2.0
    clock: Callable[[], float] = time.monotonic  # injectable: tests drive the bucket without wall time
    _level: float = 0.0
    _at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[bool, int]:
        with self._lock:
            now = self.clock()
            if self._at is None:
                self._at = now
            self._level = max(0.0, self._level - (now - self._at) * self.leak_per_second)
            self._at = now
            if self._level + 1 > self.capacity:
                return False, int(self._level)
            self._level += 1
            return True, int(self._level)


def _encode(info: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(info, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def create_app(
    store: OrderStore,
    token: str,
    *,
    rate_limit: RateLimit | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    limiter = rate_limit or RateLimit()

    def error(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"errors": message}, status_code=status, headers=headers)

    async def orders(request: Request) -> Response:
        if request.headers.get("x-shopify-access-token") != token:
            return error(401, "[API] Invalid API key or access token (unrecognized login or wrong password)")
        allowed, level = limiter.take()
        if not allowed:
            return error(
                429,
                "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
                **{"Retry-After": f"{limiter.retry_after:g}"},
            )
        q = request.query_params
        try:
            limit = min(MAX_LIMIT, max(1, int(q.get("limit", "50"))))
            if "page_info" in q:
                info = _decode(q["page_info"])
            else:
                info = {"min": q.get("updated_at_min"), "after": 0, "now": clock().isoformat()}
            updated_min = _ts(info["min"].replace(" ", "+")) if info.get("min") else None
            now = _ts(info["now"])
        except (ValueError, KeyError, TypeError):
            return error(400, "Invalid value for one or more query parameters (updated_at_min, limit, page_info)")
        page = store.current(now, updated_min, int(info["after"]), limit + 1)
        has_next = len(page) > limit
        page = page[:limit]
        headers = {"X-Shopify-Shop-Api-Call-Limit": f"{level}/{limiter.capacity}"}
        if has_next:
            nxt = _encode({**info, "after": int(page[-1]["id"])})
            base = str(request.url).split("?", 1)[0]
            headers["Link"] = f'<{base}?{urlencode({"limit": limit, "page_info": nxt})}>; rel="next"'
        return JSONResponse({"orders": page}, headers=headers)

    return Starlette(routes=[Route("/admin/api/{version}/orders.json", orders, methods=["GET"])])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """Run an ASGI app with uvicorn in a daemon thread (the demo and the tests)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"asgi-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def store_path(home: Path) -> Path:
    return home / "mock_shopify" / "orders.jsonl"


def append_versions(path: Path, versions: Iterable[dict]) -> int:
    """Append order versions to the store file (whole lines, flushed together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(v, separators=(",", ":")) + "\n" for v in versions]
    if lines:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))
    return len(lines)
