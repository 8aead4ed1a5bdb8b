"""A local fake of the OpenAI chat-completions endpoint, for tests through the real ``openai`` client.

Each request takes the next scripted action (or the ``default`` responder): a reply with given content, an
HTTP error status, or a hang (the response waits until the test ends, so the client's timeout fires)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Action = tuple  # ("reply", content) | ("status", code, headers) | ("hang",)


def facts_of(request: dict[str, Any]) -> dict[str, Any]:
    """The facts JSON of a rendered exception_narrative prompt (the fake 'reads' the prompt like a model)."""
    user = request["messages"][-1]["content"]
    return json.loads(user.split("Facts:\n", 1)[1].split("\n\nallowed_labels", 1)[0])


class FakeLLM:
    def __init__(self, default: Callable[[dict], Action] | None = None):
        self.requests: list[dict] = []
        self.script: list[Action] = []
        self.default = default or (lambda request: ("status", 500, {}))
        self.release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    action = fake.script.pop(0) if fake.script else None
                action = action or fake.default(body)
                if not self.path.endswith("/chat/completions"):
                    action = ("status", 404, {})
                if action[0] == "hang":
                    fake.release.wait(30)
                    action = ("reply", "{}")
                if action[0] == "status":
                    payload = json.dumps({"error": {"message": f"fake error {action[1]}", "type": "fake"}})
                    self._send(action[1], payload, action[2] if len(action) > 2 else {})
                    return
                content = action[1]
                usage = action[2] if len(action) > 2 else (120, 80)
                payload = json.dumps(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": 1_700_000_000,
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": usage[0],
                            "completion_tokens": usage[1],
                            "total_tokens": usage[0] + usage[1],
                        },
                    }
                )
                self._send(200, payload, {})

            def _send(self, code: int, payload: str, headers: dict) -> None:
                data = payload.encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def good_answer(request: dict, **overrides) -> Action:
    """A well-formed, grounded answer built from the facts in the prompt."""
    facts = facts_of(request)
    answer = {
        "order_id": facts["order_id"],
        "label": "UNKNOWN",
        "ops_note": f"Order {facts['order_id']}: the {facts['stage']} step was due "
        f"{facts['due_at_local']} and is "
        f"{facts['status']}. Check the events and follow up with the team.",
        "client_note": f"We are sorry: order {facts['order_id']} is running later than we hoped. "
        "We are looking into it and will update you soon.",
        "confidence": 0.7,
    }
    answer.update(overrides)
    return ("reply", json.dumps(answer))
