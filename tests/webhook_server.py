"""A local Slack-compatible webhook for tests: records every POST, answers a scripted status."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookServer:
    """``respond(payload, attempt_number_for_this_payload) -> (status, headers)``; default 200."""

    def __init__(self, respond: Callable[[dict, int], tuple[int, dict]] | None = None):
        self.requests: list[dict] = []
        self.respond = respond or (lambda payload, n: (200, {}))
        self._seen: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                key = json.dumps(payload, sort_keys=True)
                server._seen[key] = server._seen.get(key, 0) + 1
                status, headers = server.respond(payload, server._seen[key])
                server.requests.append({"payload": payload, "status": status})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"error")

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/hooks/e2a"

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def texts(self, containing: str = "", *, status: int | None = None) -> list[str]:
        return [
            r["payload"]["text"]
            for r in self.requests
            if containing in r["payload"]["text"] and (status is None or r["status"] == status)
        ]
