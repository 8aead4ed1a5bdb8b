"""The LLM behind any OpenAI-compatible chat-completions API (OpenAI, OpenRouter, vLLM, Ollama, llama.cpp
server).

Configured from the environment when asked (never at import time):

- ``E2A_LLM_BASE_URL`` (e.g. ``http://127.0.0.1:11434/v1``), ``E2A_LLM_API_KEY``, ``E2A_LLM_MODEL``;
- ``E2A_LLM_DAILY_TOKENS``: per-tenant daily token budget (unset = no budget);
- optional tuning: ``E2A_LLM_TIMEOUT`` (seconds, 30), ``E2A_LLM_MAX_RETRIES`` (3), ``E2A_LLM_CONCURRENCY``
  (4), ``E2A_LLM_PRICE_INPUT_PER_1M`` / ``E2A_LLM_PRICE_OUTPUT_PER_1M`` (price per million tokens, for the
  cost estimate; unset = no estimate, never a guessed price).

No model (or neither a base URL nor a key) = not configured: callers write template narratives instead.
Retries (429, 5xx, connection errors) are ours, with exponential backoff and ``Retry-After``; the ``openai``
client's own retries are off so that the backoff is configurable and testable."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

import openai


class LLMError(RuntimeError):
    """A call that did not produce a completion. ``kind``: timeout, rate_limited, server_error, connection,
    http_<status> (a 4xx other than 429), empty."""

    def __init__(self, kind: str, message: str, attempts: int = 1):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.attempts = attempts


@dataclass(frozen=True)
class LLMConfig:
    model: str
    base_url: str | None = None
    api_key: str = "unused"
    daily_tokens: int | None = None
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    concurrency: int = 4
    json_mode: bool = True
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 300.0
    price_input_per_1m: Decimal | None = None
    price_output_per_1m: Decimal | None = None

    def with_overrides(self, **changes) -> LLMConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def breaker_key(self) -> str:
        """One breaker per endpoint and model (a dead local server should not trip a hosted one)."""
        return f"{self.base_url or 'openai'}|{self.model}"

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> Decimal | None:
        """Estimated cost of one call; None when the prices (or the token counts) are unknown."""
        if self.price_input_per_1m is None or self.price_output_per_1m is None:
            return None
        if prompt_tokens is None or completion_tokens is None:
            return None
        total = prompt_tokens * self.price_input_per_1m + completion_tokens * self.price_output_per_1m
        return (total / Decimal(1_000_000)).quantize(Decimal("0.000001"))


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _decimal(env: Mapping[str, str], name: str) -> Decimal | None:
    value = (env.get(name) or "").strip()
    return Decimal(value) if value else None


def config_from_env(environ: Mapping[str, str] | None = None) -> LLMConfig | None:
    """The configuration in the environment, or None when no LLM is configured (template narratives)."""
    env = os.environ if environ is None else environ
    model = (env.get("E2A_LLM_MODEL") or "").strip()
    base_url = (env.get("E2A_LLM_BASE_URL") or "").strip() or None
    api_key = (env.get("E2A_LLM_API_KEY") or "").strip()
    if not model or not (base_url or api_key):
        return None
    timeout = (env.get("E2A_LLM_TIMEOUT") or "").strip()
    retries = _int(env, "E2A_LLM_MAX_RETRIES")
    return LLMConfig(
        model=model,
        base_url=base_url,
        api_key=api_key or "unused",  # local servers ignore the key, the client insists on one
        daily_tokens=_int(env, "E2A_LLM_DAILY_TOKENS"),
        timeout_s=float(timeout) if timeout else 30.0,
        max_retries=3 if retries is None else retries,
        concurrency=_int(env, "E2A_LLM_CONCURRENCY") or 4,
        price_input_per_1m=_decimal(env, "E2A_LLM_PRICE_INPUT_PER_1M"),
        price_output_per_1m=_decimal(env, "E2A_LLM_PRICE_OUTPUT_PER_1M"),
    )


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int

    @property
    def tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (ValueError, AttributeError):
        return None


class LLMClient:
    """Chat completions with timeouts, retries with backoff on 429/5xx, and bounded concurrency.

    ``sleep`` is injectable so tests never wait. Thread-safe: one client serves a pool of workers, at most
    ``concurrency`` requests in flight."""

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max(1, config.concurrency))
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_s,
            max_retries=0,
        )

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): exponential, capped, at least
        ``Retry-After``."""
        delay = min(self.config.backoff_max_s, self.config.backoff_base_s * (2 ** (attempt - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.backoff_max_s))
        return delay

    def complete(self, system: str, user: str, *, max_tokens: int = 600) -> Completion:
        kwargs: dict = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        if self.config.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        attempts = 0
        last: LLMError | None = None
        while attempts <= self.config.max_retries:
            attempts += 1
            retry_after = None
            try:
                with self._slots:
                    response = self._client.chat.completions.create(**kwargs)
            except openai.APITimeoutError as exc:
                # A slow model stays slow: no retry, the caller falls back and the breaker counts it.
                raise LLMError("timeout", str(exc), attempts) from None
            except openai.RateLimitError as exc:
                last, retry_after = LLMError("rate_limited", str(exc), attempts), _retry_after(exc)
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise LLMError(f"http_{exc.status_code}", str(exc), attempts) from None
                last = LLMError("server_error", f"HTTP {exc.status_code}", attempts)
            except openai.APIConnectionError as exc:
                last = LLMError("connection", str(exc), attempts)
            else:
                choice = response.choices[0] if response.choices else None
                text = (choice.message.content if choice and choice.message else None) or ""
                if not text.strip():
                    raise LLMError("empty", "the completion had no content", attempts)
                usage = response.usage
                return Completion(
                    text=text,
                    model=response.model or self.config.model,
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=usage.completion_tokens if usage else None,
                    attempts=attempts,
                )
            if attempts <= self.config.max_retries:
                self._sleep(self.backoff(attempts, retry_after))
        assert last is not None
        last.attempts = attempts
        raise last

    def close(self) -> None:
        self._client.close()
