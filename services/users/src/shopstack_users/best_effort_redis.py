"""Redis as the users service uses it: an optimisation it can do without.

Callers run every command through ``run``, which answers ``None`` when Redis did not: the
caller treats that as a miss (the cache) or as "not counted" (the login throttle). A
failure is counted in ``shopstack_dependency_fallbacks_total`` and logged once per burst,
and for ``backoff.seconds`` after it commands are not sent at all, so a Redis that hangs
costs one timeout per window instead of one (or several) per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis

from shopstack_common.backoff import BackOff
from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import DEPENDENCY_FALLBACKS

T = TypeVar("T")


@dataclass(frozen=True)
class BestEffortRedis:
    client: redis.Redis
    burst_log: BurstLogger
    backoff: BackOff

    def run(self, operation: str, command: Callable[[redis.Redis], T]) -> T | None:
        """``command``'s answer, or ``None`` when Redis did not give one (or is being left
        alone after a failure); a command whose own answer can be ``None`` wraps it."""
        if self.backoff.skipping:
            DEPENDENCY_FALLBACKS.labels("redis", operation).inc()
            return None
        try:
            answer = command(self.client)
        except redis.RedisError as error:
            self._failed(operation, error)
            return None
        self.backoff.succeeded()
        self.burst_log.recovered("redis", "Redis answers again")
        return answer

    def _failed(self, operation: str, error: Exception) -> None:
        DEPENDENCY_FALLBACKS.labels("redis", operation).inc()
        self.backoff.failed()
        self.burst_log.warning(
            "redis",
            "Redis unavailable, going on without it for %.1fs (%s): %s",
            self.backoff.seconds,
            operation,
            error,
            extra={"operation": operation},
        )
