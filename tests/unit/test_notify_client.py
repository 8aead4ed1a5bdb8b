"""The webhook client against a local HTTP server: retries, non-retryable errors, Retry-After, rate limit."""

import pytest

from e2a_dagster.lib.actions.notify import DeliveryError, WebhookClient, slack_message
from tests.webhook_server import WebhookServer


class FakeTime:
    """A clock that only moves when the client sleeps (records every sleep)."""

    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def _client(url: str, t: FakeTime, **kwargs) -> WebhookClient:
    return WebhookClient(url, sleep=t.sleep, clock=t.clock, **{"backoff": 0.5, "min_interval": 1.0, **kwargs})


def test_retries_5xx_with_exponential_backoff_then_succeeds():
    t = FakeTime()
    with (
        WebhookServer(lambda payload, n: (500 if n <= 2 else 200, {})) as hook,
        _client(hook.url, t) as client,
    ):
        assert client.post(slack_message("hello", {"a": 1})) == (200, 3)
    assert [r["status"] for r in hook.requests] == [500, 500, 200]
    # backoff 0.5 s, then the 1 s rate limit waits the other 0.5 s; backoff 1.0 s already spaces the third post
    assert t.sleeps == [0.5, 0.5, 1.0]


def test_gives_up_after_the_retries_and_does_not_retry_a_4xx():
    t = FakeTime()
    with (
        WebhookServer(lambda payload, n: (503, {})) as hook,
        _client(hook.url, t, retries=2) as client,
        pytest.raises(DeliveryError) as failure,
    ):
        client.post({"text": "x"})
    assert (failure.value.status, failure.value.attempts, len(hook.requests)) == (503, 3, 3)
    with (
        WebhookServer(lambda payload, n: (400, {})) as hook,
        _client(hook.url, t) as client,
        pytest.raises(DeliveryError) as failure,
    ):
        client.post({"text": "x"})
    assert (failure.value.status, failure.value.retryable, len(hook.requests)) == (400, False, 1)


def test_honours_retry_after_and_spaces_posts_by_the_rate_limit():
    t = FakeTime()

    def respond(payload, n):
        return (429, {"Retry-After": "7"}) if payload["text"] == "a" and n == 1 else (200, {})

    with WebhookServer(respond) as hook, _client(hook.url, t) as client:
        assert client.post({"text": "a"}) == (200, 2)
        assert client.post({"text": "b"}) == (200, 1)
    # 7 s from Retry-After (more than the 0.5 s backoff); then the second message waits the 1 s interval
    assert t.sleeps == [7.0, 1.0]


def test_slack_message_shape():
    message = slack_message("Critical SLA breach", {"order_id": "o1", "severity": "critical", "carrier": None})
    assert message == {
        "text": "Critical SLA breach",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Critical SLA breach"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*order id*: o1\n*severity*: critical"}},
        ],
    }
