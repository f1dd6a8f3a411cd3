"""Rate limits in Redis: GCRA in one Lua script, one atomic round trip for every request that
asked in the same event-loop tick.

GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival
time (TAT) of the next request. A policy of ``limit`` requests per ``window`` lets a burst of
``limit`` through, then one request every ``window / limit``. The clock is Redis's own
(``TIME``), so replicas with drifting clocks still agree. Keys carry a TTL of the time the
bucket needs to refill, so idle buckets disappear.

The checks of one tick go to Redis together, in one call of the script, which decides them
one after another as if they had come one by one (a bucket asked twice sees its first answer):
the decisions are the same as with one call each, and exact; only the round trips, the
commands Redis parses and the client spans are fewer. Under load, with 32 connections on one
worker, that is most of the limiter's cost (services/gateway/benchmarks/README.md).

The answer is advertised with the IETF RateLimit header fields, as
draft-ietf-httpapi-ratelimit-headers-10/-11 define them (structured fields, one named policy):
``RateLimit-Policy: "user";q=600;w=60`` and ``RateLimit: "user";r=599;t=1``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopstack_common.backoff import BackOff
from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import DEPENDENCY_FALLBACKS
from shopstack_gateway.config import RateLimitPolicy

logger = logging.getLogger(__name__)

KEY_PREFIX = "gw:rl:"

# KEYS: the buckets, in the order asked. ARGV[2i-1], ARGV[2i]: the emission interval and the
# window (the burst tolerance) of KEYS[i], in microseconds. Returns, for each key in turn, its
# {allowed (1/0), remaining, retry_after_us, reset_us}. Times are integer microseconds: exact in
# a Lua double, and written with %d so no digits are lost to number formatting. One clock
# reading serves the whole batch: its checks arrived in the same instant.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local answers = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - window
  local n = #answers
  if now < allow_at then
    answers[n + 1], answers[n + 2], answers[n + 3], answers[n + 4] = 0, 0, allow_at - now, tat - now
  else
    local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
    redis.call('SET', key, string.format('%d', new_tat), 'PX', ttl_ms)
    answers[n + 1], answers[n + 2] = 1, math.floor((now - allow_at) / interval)
    answers[n + 3], answers[n + 4] = 0, new_tat - now
  end
end
return answers
"""
ANSWER_FIELDS = 4  # per key, in the script's answer


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window_seconds: int

    @classmethod
    def from_settings(cls, name: str, settings: RateLimitPolicy) -> Policy:
        return cls(name=name, limit=settings.limit, window_seconds=settings.window_seconds)

    @property
    def policy_header(self) -> tuple[bytes, bytes]:
        return b"ratelimit-policy", f'"{self.name}";q={self.limit};w={self.window_seconds}'.encode()


@dataclass(frozen=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    retry_after_seconds: float
    reset_seconds: float

    @property
    def retry_after(self) -> int:
        """Whole seconds, rounded up, and at least 1: the client must not come back early."""
        return max(1, math.ceil(self.retry_after_seconds))

    def headers(self) -> list[tuple[bytes, bytes]]:
        # When limited, the window ends when the next request is allowed (the draft asks that
        # Retry-After not point earlier than the end of the window).
        window = self.retry_after if not self.allowed else math.ceil(self.reset_seconds)
        name = self.policy.name
        headers = [
            self.policy.policy_header,
            (b"ratelimit", f'"{name}";r={self.remaining};t={window}'.encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


class RateLimiterUnavailableError(Exception):
    """Redis did not answer and the limiter is configured to fail closed."""


class RateLimiter:
    """Checks one bucket per request. When Redis fails, requests pass (``fail_open``) or are
    refused; either way the failure is counted, logged once per burst, and Redis is left alone
    for ``cooldown_seconds`` (``shopstack_common.backoff``; the platform's
    REDIS_RETRY_AFTER_SECONDS) so a dead or black-holed Redis adds no latency to every
    request."""

    def __init__(
        self,
        redis: Redis,
        *,
        fail_open: bool,
        cooldown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._script = redis.register_script(GCRA_SCRIPT)
        self.fail_open = fail_open
        self._backoff = BackOff(cooldown_seconds, clock=clock)
        self._burst = BurstLogger(logger)
        # The checks asked in this tick, not yet sent: (key, interval, window, answer).
        self._batch: list[tuple[str, int, int, asyncio.Future[list[int]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def check(self, policy: Policy, partition: str) -> Decision | None:
        """The decision, or None when Redis is unavailable and the limiter fails open."""
        if self._backoff.skipping:
            self._unavailable(None)
            return None
        window_us = policy.window_seconds * 1_000_000
        # At least a microsecond apart: a huge limit must not make the interval (and TTL) zero.
        interval_us = max(1, window_us // policy.limit)
        try:
            allowed, remaining, retry_after_us, reset_us = await self._ask(
                f"{KEY_PREFIX}{policy.name}:{partition}", interval_us, window_us
            )
        except (RedisError, OSError) as error:
            self._backoff.failed()
            self._unavailable(error)
            return None
        self._backoff.succeeded()
        self._burst.recovered("redis", "rate limiting (Redis) recovered")
        return Decision(
            policy=policy,
            allowed=bool(allowed),
            remaining=int(remaining),
            retry_after_seconds=retry_after_us / 1_000_000,
            reset_seconds=reset_us / 1_000_000,
        )

    def _ask(self, key: str, interval_us: int, window_us: int) -> asyncio.Future[list[int]]:
        """The script's answer for ``key``, from the call that carries this tick's checks."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[int]] = loop.create_future()
        if not self._batch:
            # Runs once every request that is ready in this tick has asked: they go together.
            loop.call_soon(self._send_batch)
        self._batch.append((key, interval_us, window_us, answer))
        return answer

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.ensure_future(self._evaluate(batch))
        self._sending.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._sending.discard)

    async def _evaluate(self, batch: list[tuple[str, int, int, asyncio.Future[list[int]]]]) -> None:
        keys = [key for key, _, _, _ in batch]
        args = [value for _, interval, window, _ in batch for value in (interval, window)]
        try:
            answers = await self._script(keys=keys, args=args)
        except asyncio.CancelledError:  # the loop is closing: nobody waits for long
            for _, _, _, answer in batch:
                answer.cancel()
            raise
        except Exception as error:  # each check decides what a failure means for its request
            for _, _, _, answer in batch:
                if not answer.done():  # a request that went away no longer waits
                    answer.set_exception(error)
            return
        for index, (_, _, _, answer) in enumerate(batch):
            if not answer.done():
                start = index * ANSWER_FIELDS
                answer.set_result(answers[start : start + ANSWER_FIELDS])

    def _unavailable(self, error: BaseException | None) -> None:
        DEPENDENCY_FALLBACKS.labels("redis", "ratelimit").inc()
        if error is not None:
            self._burst.warning("redis", "rate limiting (Redis) failing: %s", error)
        if not self.fail_open:
            raise RateLimiterUnavailableError
