"""Notifications (DESIGN §1 "Actions"): what deserves a message, the bookkeeping that sends it once, and a
Slack-compatible webhook client with retries and rate limiting.

Bookkeeping: ``actions.notifications`` holds one row per (kind, subject_id) — the unique key is what makes
re-runs never notify twice. A row is ``pending`` until delivered (``sent``), ``failed`` after a delivery attempt
failed (retried by later runs until ``max_attempts``), or ``skipped`` when it was recorded while notifications
were off (no webhook URL): turning them on later does not flood the channel with old news.

Delivery claims rows with ``FOR UPDATE SKIP LOCKED`` and records the outcome in the same transaction, so two
concurrent runs never post the same row. The only duplicate left is the unavoidable one: the process dies after
the webhook answered 2xx and before the commit (the row is posted again by the next run)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

KIND_CRITICAL_EXCEPTION = "sla_exception_critical"
KIND_ADJUSTMENT_REVIEW = "invoice_adjustment_needs_review"
# Written by the invoice adjustments themselves (lib/invoicing/adjustments.py) when a run's auto-approvals hit the
# run guard: one message per tenant and held batch, instead of one per held adjustment.
KIND_APPROVAL_GUARD = "invoice_approval_guard"

# Rows that deserve a notification, per kind: (subject_id, tenant_id, title, facts as JSON). Each detector runs
# only when its source relation exists (the invoice tables arrive with the Invoice Guard).
DETECTORS: dict[str, tuple[str, str]] = {
    KIND_CRITICAL_EXCEPTION: (
        "marts.fct_sla_exceptions",
        """
        select exception_id as subject_id, tenant_id,
               format('Critical SLA breach: %s %s stage of order %s', tenant_id, stage, order_id) as title,
               jsonb_build_object(
                   'tenant_id', tenant_id, 'order_id', order_id, 'stage', stage, 'warehouse_id', warehouse_id,
                   'severity', severity, 'reason_code', reason_code, 'due_at', due_at,
                   'minutes_late', minutes_late) as facts
        from marts.fct_sla_exceptions
        where status = 'open' and severity = 'critical'
        """,
    ),
    KIND_ADJUSTMENT_REVIEW: (
        "actions.invoice_adjustments",
        """
        select adjustment_id as subject_id, tenant_id,
               format('Invoice adjustment needs review: %s invoice %s, %s %s', tenant_id, invoice_id, amount,
                      currency) as title,
               jsonb_build_object(
                   'tenant_id', tenant_id, 'invoice_id', invoice_id, 'order_id', order_id, 'kind', kind,
                   'reason_code', reason_code, 'amount', amount, 'currency', currency) as facts
        from actions.invoice_adjustments
        where approval_status = 'needs_review' and status = 'open'
          -- held by the run guard: its invoice_approval_guard notification covers the whole batch
          and coalesce(approval_reason, '') not like 'run_guard:%'
        """,
    ),
}


def slack_message(title: str, facts: dict[str, Any]) -> dict[str, Any]:
    """Slack-compatible JSON: ``text`` (fallback, and what plain webhooks show) plus Block Kit ``blocks``."""
    lines = [f"*{k.replace('_', ' ')}*: {v}" for k, v in facts.items() if v is not None]
    return {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines) or "_no details_"}},
        ],
    }


def record_notifications(engine: sa.Engine, *, enabled: bool) -> dict[str, int]:
    """Insert a row for every subject that deserves one and has none yet; returns new rows per kind.
    Rows recorded while notifications are off are ``skipped``."""
    created: dict[str, int] = {}
    with engine.begin() as conn:
        for kind, (relation, sql) in DETECTORS.items():
            if conn.exec_driver_sql("select to_regclass(%s)", (relation,)).scalar_one() is None:
                continue
            rows = conn.execute(sa.text(f"select * from ({sql}) as d order by subject_id")).mappings().all()
            new = 0
            for row in rows:
                new += record_notification(
                    conn,
                    kind=kind,
                    subject_id=row["subject_id"],
                    tenant_id=row["tenant_id"],
                    title=row["title"],
                    facts=dict(row["facts"]),
                    enabled=enabled,
                )
            created[kind] = new
    return created


def record_notification(
    conn: sa.Connection, *, kind: str, subject_id: str, tenant_id: str, title: str, facts: dict, enabled: bool
) -> bool:
    """Record one notification (``pending`` when notifications are on, else ``skipped``) unless (kind, subject)
    has one already; True when it is new. Delivery is ``deliver_pending``'s, as for every other kind."""
    inserted = conn.execute(
        sa.text(
            """
            insert into actions.notifications (kind, subject_id, tenant_id, title, message, status)
            values (:kind, :subject, :tenant, :title, cast(:message as jsonb), :status)
            on conflict (kind, subject_id) do nothing
            returning notification_id
            """
        ),
        {
            "kind": kind,
            "subject": subject_id,
            "tenant": tenant_id,
            "title": title,
            "message": json.dumps(slack_message(title, facts), default=str),
            "status": "pending" if enabled else "skipped",
        },
    ).first()
    return inserted is not None


class DeliveryError(RuntimeError):
    def __init__(self, message: str, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass
class WebhookClient:
    """POSTs JSON to a webhook. Retries network errors, 5xx and 429 (honouring ``Retry-After``) with exponential
    backoff; other 4xx fail at once. Rate limit: at least ``min_interval`` seconds between two posts."""

    url: str
    retries: int = 3
    backoff: float = 1.0
    min_interval: float = 1.0  # Slack incoming webhooks: about one message per second
    timeout: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _last_post: float | None = field(default=None, init=False)
    _client: httpx.Client | None = field(default=None, init=False)

    def __enter__(self) -> WebhookClient:
        self._client = httpx.Client(timeout=self.timeout)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _throttle(self) -> None:
        if self._last_post is not None:
            wait = self.min_interval - (self.clock() - self._last_post)
            if wait > 0:
                self.sleep(wait)
        self._last_post = self.clock()

    def post(self, payload: dict[str, Any]) -> tuple[int, int]:
        """Deliver one payload; returns (HTTP status, attempts). Raises DeliveryError when it gives up."""
        assert self._client is not None, "use WebhookClient as a context manager"
        attempt = 0
        while True:
            attempt += 1
            self._throttle()
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
                delay = self.backoff * 2 ** (attempt - 1)
            else:
                if response.status_code < 300:
                    return response.status_code, attempt
                retryable = response.status_code >= 500 or response.status_code == 429
                error = DeliveryError(
                    f"HTTP {response.status_code}: {response.text[:200]}", response.status_code, retryable
                )
                delay = self.backoff * 2 ** (attempt - 1)
                retry_after = response.headers.get("Retry-After")
                if response.status_code == 429 and retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
                if not retryable:
                    error.attempts = attempt  # type: ignore[attr-defined]
                    raise error
            if attempt > self.retries:
                error.attempts = attempt  # type: ignore[attr-defined]
                raise error
            self.sleep(delay)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0  # left pending by the per-run cap
    errors: list[str] = field(default_factory=list)


def deliver_pending(
    engine: sa.Engine, client: WebhookClient, *, max_per_run: int = 50, max_attempts: int = 8
) -> DeliveryReport:
    """Post pending rows, and failed ones with attempts left, oldest first, at most ``max_per_run``."""
    report = DeliveryReport()
    with engine.connect() as conn:
        started = conn.execute(sa.text("select now()")).scalar_one()  # a row is tried once per run
    with client:
        while report.sent + report.failed < max_per_run:
            with engine.begin() as conn:
                row = (
                    conn.execute(
                        sa.text(
                            """
                        select notification_id, message, attempts from actions.notifications
                        where (status = 'pending' or (status = 'failed' and attempts < :max_attempts))
                          and (last_attempt_at is null or last_attempt_at < :started)
                        order by notification_id
                        limit 1
                        for update skip locked
                        """
                        ),
                        {"max_attempts": max_attempts, "started": started},
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    break
                try:
                    status, attempts = client.post(row["message"])
                except DeliveryError as exc:
                    attempts = getattr(exc, "attempts", 1)
                    conn.execute(
                        sa.text(
                            """
                            update actions.notifications
                            set status = 'failed', attempts = attempts + :n, last_error = :err,
                                response_status = :code, last_attempt_at = now()
                            where notification_id = :id
                            """
                        ),
                        {
                            "n": attempts,
                            "err": str(exc)[:500],
                            "code": exc.status,
                            "id": row["notification_id"],
                        },
                    )
                    report.failed += 1
                    report.errors.append(str(exc)[:200])
                else:
                    conn.execute(
                        sa.text(
                            """
                            update actions.notifications
                            set status = 'sent', attempts = attempts + :n, last_error = null,
                                response_status = :code, last_attempt_at = now(), sent_at = now()
                            where notification_id = :id
                            """
                        ),
                        {"n": attempts, "code": status, "id": row["notification_id"]},
                    )
                    report.sent += 1
    with engine.connect() as conn:
        report.deferred = conn.execute(
            sa.text("select count(*) from actions.notifications where status = 'pending'")
        ).scalar_one()
    return report


def status_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select status, count(*) from actions.notifications group by status")).all()
    counts = {s: 0 for s in ("pending", "sent", "failed", "skipped")}
    counts.update({str(s): int(n) for s, n in rows})
    return counts
