"""What keeps the LLM affordable and a dead endpoint harmless, persisted in the database so it holds across
runs.

- ``TokenBudget`` (``ops.llm_budget``): a per-tenant daily token budget; the day is the tenant's local date,
  so it resets at tenant-local midnight. Tokens are reserved before a call (an estimate) and settled after
  it (actual).
- ``CircuitBreaker`` (``ops.llm_breaker``): opens after ``threshold`` consecutive failed calls; after
  ``cooldown_s`` it half-opens and lets one probe through: success closes it, failure opens it again.

Time comes from an injectable ``clock`` so tests move it instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

Clock = Callable[[], datetime]


def estimate_tokens(text: str) -> int:
    """A deliberately generous estimate (about 3 characters per token) used only to reserve budget."""
    return len(text) // 3 + 1


class TokenBudget:
    def __init__(self, engine: sa.Engine, daily_limit: int | None, tenant_time_zones: Mapping[str, str], clock: Clock):
        self.engine = engine
        self.daily_limit = daily_limit
        self.zones = tenant_time_zones
        self.clock = clock

    def local_date(self, tenant_id: str) -> date:
        zone = ZoneInfo(self.zones.get(tenant_id) or "UTC")
        return self.clock().astimezone(zone).date()

    def reserve(self, tenant_id: str, tokens: int) -> bool:
        """Take ``tokens`` from today's budget if they fit (atomically); False = budget exhausted."""
        if self.daily_limit is None:
            return True
        day = self.local_date(tenant_id)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    insert into ops.llm_budget (tenant_id, budget_date, tokens_limit)
                    values (:t, :d, :limit)
                    on conflict (tenant_id, budget_date) do update set tokens_limit = excluded.tokens_limit
                    """
                ),
                {"t": tenant_id, "d": day, "limit": self.daily_limit},
            )
            taken = conn.execute(
                sa.text(
                    """
                    update ops.llm_budget
                       set tokens_used = tokens_used + :n, calls = calls + 1, updated_at = now()
                     where tenant_id = :t and budget_date = :d and tokens_used + :n <= tokens_limit
                    returning tokens_used
                    """
                ),
                {"t": tenant_id, "d": day, "n": tokens},
            ).first()
            if taken is None:
                conn.execute(
                    sa.text(
                        "update ops.llm_budget set refused = refused + 1, updated_at = now() "
                        "where tenant_id = :t and budget_date = :d"
                    ),
                    {"t": tenant_id, "d": day},
                )
        return taken is not None

    def settle(self, tenant_id: str, reserved: int, actual: int | None) -> None:
        """Replace a reservation by the tokens the call really used (None = unknown: the estimate stays)."""
        if self.daily_limit is None or actual is None or actual == reserved:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "update ops.llm_budget set tokens_used = greatest(tokens_used + :delta, 0), "
                    "updated_at = now() "
                    "where tenant_id = :t and budget_date = :d"
                ),
                {"t": tenant_id, "d": self.local_date(tenant_id), "delta": actual - reserved},
            )

    def used(self, tenant_id: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.text("select tokens_used from ops.llm_budget where tenant_id = :t and budget_date = :d"),
                {"t": tenant_id, "d": self.local_date(tenant_id)},
            ).scalar()
        return int(value or 0)


class CircuitBreaker:
    def __init__(self, engine: sa.Engine, key: str, *, threshold: int, cooldown_s: float, clock: Clock):
        self.engine = engine
        self.key = key
        self.threshold = threshold
        self.cooldown = timedelta(seconds=cooldown_s)
        self.clock = clock

    def _row(self, conn: sa.Connection) -> dict:
        conn.execute(
            sa.text("insert into ops.llm_breaker (breaker_key) values (:k) on conflict do nothing"),
            {"k": self.key},
        )
        return dict(
            conn.execute(sa.text("select * from ops.llm_breaker where breaker_key = :k for update"), {"k": self.key})
            .mappings()
            .one()
        )

    def state(self) -> str:
        with self.engine.begin() as conn:
            return self._row(conn)["state"]

    def allow(self) -> bool:
        """May a call go out now? Closed: yes. Open: no, until the cool-down has passed; then the breaker
        half-opens and this caller is the one probe (everyone else is refused until the probe reports)."""
        with self.engine.begin() as conn:
            row = self._row(conn)
            if row["state"] == "closed":
                return True
            now = self.clock()
            if row["opened_at"] is not None and now >= row["opened_at"] + self.cooldown:
                # ``opened_at`` moves to the probe's start: a probe that never reports (a killed run) lets the
                # next one through after another cool-down instead of wedging the breaker half-open.
                conn.execute(
                    sa.text(
                        "update ops.llm_breaker set state = 'half_open', opened_at = :now, "
                        "updated_at = now() "
                        "where breaker_key = :k"
                    ),
                    {"k": self.key, "now": now},
                )
                return True
            return False

    def record_success(self) -> None:
        with self.engine.begin() as conn:
            self._row(conn)
            conn.execute(
                sa.text(
                    "update ops.llm_breaker set state = 'closed', consecutive_failures = 0, "
                    "opened_at = null, "
                    "updated_at = now() where breaker_key = :k"
                ),
                {"k": self.key},
            )

    def record_failure(self, error: str) -> str:
        """Count a failed call; returns the state afterwards."""
        with self.engine.begin() as conn:
            row = self._row(conn)
            failures = row["consecutive_failures"] + 1
            opens = row["state"] == "half_open" or failures >= self.threshold
            state = "open" if opens else row["state"]
            conn.execute(
                sa.text(
                    """
                    update ops.llm_breaker
                       set consecutive_failures = :f, last_error = :e, updated_at = now(), state = :s,
                           opened_at = case when :opens then cast(:now as timestamptz) else opened_at end
                     where breaker_key = :k
                    """
                ),
                {
                    "f": failures,
                    "e": error[:500],
                    "s": state,
                    "opens": opens,
                    "now": self.clock(),
                    "k": self.key,
                },
            )
            return state
