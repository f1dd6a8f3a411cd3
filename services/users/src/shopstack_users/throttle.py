"""Login throttling: failed password checks for one account from one client address are
counted in Redis; past the limit that pair is refused until the window ends.

Counting per account *and* address means an attacker elsewhere cannot lock a user out, and
one address guessing many accounts is the gateway's rate limit's business. Redis is an
optimisation here too: when it does not answer, logins go on unthrottled (fail open), and
the fallback is counted and logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

from shopstack_users.extensions import cache

KEY_PREFIX = "users:login-failures:"


@dataclass(frozen=True)
class LoginThrottle:
    max_failures: int
    window_seconds: int

    @staticmethod
    def _key(email: str, address: str) -> str:
        # Hashed so neither the email nor the address sits in Redis in the clear.
        digest = hashlib.sha256(f"{email}\x00{address}".encode()).hexdigest()
        return KEY_PREFIX + digest

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds until this pair may try again, or ``None`` when it may try now."""
        key = self._key(email, address)
        try:
            pipeline = cache.client.pipeline(transaction=False)
            pipeline.get(key)
            pipeline.ttl(key)
            count, ttl = pipeline.execute()
        except redis.RedisError as error:
            cache.failed("users.throttle_check", error)
            return None
        if count is None or int(count) < self.max_failures:
            return None
        return max(int(ttl), 1)

    def failed(self, email: str, address: str) -> None:
        """Count a failure. The window starts at the first failure and is not extended."""
        key = self._key(email, address)
        try:
            # SET NX EX creates the counter with its TTL; INCR keeps the TTL. In one MULTI,
            # so the key never exists without an expiry (EXPIRE NX needs Redis 7).
            pipeline = cache.client.pipeline(transaction=True)
            pipeline.set(key, 0, ex=self.window_seconds, nx=True)
            pipeline.incr(key)
            pipeline.execute()
        except redis.RedisError as error:
            cache.failed("users.throttle_count", error)

    def succeeded(self, email: str, address: str) -> None:
        try:
            cache.client.delete(self._key(email, address))
        except redis.RedisError as error:
            cache.failed("users.throttle_reset", error)
