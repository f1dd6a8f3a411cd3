"""Redis as the users service uses it: an optimisation it can do without.

Callers treat every Redis error as a miss (the cache) or as "not counted" (the login
throttle) and report it with ``failed``, which counts each fallback in
``shopstack_dependency_fallbacks_total`` and logs once per burst.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import DEPENDENCY_FALLBACKS


@dataclass(frozen=True)
class BestEffortRedis:
    client: redis.Redis
    burst_log: BurstLogger

    def failed(self, operation: str, error: Exception) -> None:
        """Redis did not answer ``operation``; the caller goes on without it."""
        DEPENDENCY_FALLBACKS.labels("redis", operation).inc()
        self.burst_log.warning(
            "redis",
            "Redis unavailable, going on without it (%s): %s",
            operation,
            error,
            extra={"operation": operation},
        )
