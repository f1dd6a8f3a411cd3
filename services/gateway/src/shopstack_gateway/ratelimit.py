"""Rate limits in Redis: GCRA in one Lua script, so each request costs one atomic round trip.

GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival
time (TAT) of the next request. A policy of ``limit`` requests per ``window`` lets a burst of
``limit`` through, then one request every ``window / limit``. The clock is Redis's own
(``TIME``), so replicas with drifting clocks still agree. Keys carry a TTL of the time the
bucket needs to refill, so idle buckets disappear.

The answer is advertised with the IETF RateLimit header fields, as
draft-ietf-httpapi-ratelimit-headers-10/-11 define them (structured fields, one named policy):
``RateLimit-Policy: "user";q=600;w=60`` and ``RateLimit: "user";r=599;t=1``.
"""

from __future__ import annotations

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

# KEYS[1]: the bucket. ARGV[1]: emission interval (us), ARGV[2]: window, the burst tolerance (us).
# Returns {allowed (1/0), remaining, retry_after_us, reset_us}. Times are integer microseconds:
# exact in a Lua double, and written with %d so no digits are lost to number formatting.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
"""


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

    async def check(self, policy: Policy, partition: str) -> Decision | None:
        """The decision, or None when Redis is unavailable and the limiter fails open."""
        if self._backoff.skipping:
            self._unavailable(None)
            return None
        window_us = policy.window_seconds * 1_000_000
        # At least a microsecond apart: a huge limit must not make the interval (and TTL) zero.
        interval_us = max(1, window_us // policy.limit)
        try:
            allowed, remaining, retry_after_us, reset_us = await self._script(
                keys=[f"{KEY_PREFIX}{policy.name}:{partition}"], args=[interval_us, window_us]
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

    def _unavailable(self, error: BaseException | None) -> None:
        DEPENDENCY_FALLBACKS.labels("redis", "ratelimit").inc()
        if error is not None:
            self._burst.warning("redis", "rate limiting (Redis) failing: %s", error)
        if not self.fail_open:
            raise RateLimiterUnavailableError
