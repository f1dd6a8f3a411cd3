"""Login throttling: the one way the service checks a user's password.

Every path that checks a password (the password grant, a password change on
``PATCH /users/me``, and whatever signs people in later) calls
``LoginThrottle.check_password``. Failed checks for one account from one client address are
counted in Redis; past the limit that pair is refused with 429 until the window ends, even
with the right password, and a success clears the count.

Counting per account *and* address means an attacker elsewhere cannot lock a user out, and
one address guessing many accounts is the gateway's rate limit's business. Redis is an
optimisation here too: when it does not answer, logins go on unthrottled (fail open), and
the fallback is counted and logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import redis

from shopstack_common.problems import TOO_MANY_FAILED_LOGINS, ProblemError
from shopstack_users.best_effort_redis import BestEffortRedis
from shopstack_users.metrics import LOGINS_THROTTLED
from shopstack_users.passwords import Passwords

KEY_PREFIX = "users:login-failures:"


@dataclass(frozen=True)
class LoginThrottle:
    redis: BestEffortRedis
    passwords: Passwords
    max_failures: int
    window_seconds: int

    def check_password(
        self, *, account: str, address: str, stored_hash: str | None, password: str
    ) -> bool:
        """Whether ``password`` matches ``stored_hash`` (``None``: no such account, which
        costs the same argon2 work). ``account`` is the normalised email the counter is kept
        under; ``address`` the client's. Raises the 429 problem while the pair is throttled."""
        key = self._key(account, address)
        retry_after = self._retry_after(key)
        if retry_after is not None:
            LOGINS_THROTTLED.inc()
            raise ProblemError(
                TOO_MANY_FAILED_LOGINS,
                "Too many wrong passwords for this account from this address; try again later.",
                headers={"Retry-After": str(retry_after)},
            )
        if self.passwords.verify(stored_hash, password):
            self._reset(key)
            return True
        self._count(key)
        return False

    @staticmethod
    def _key(account: str, address: str) -> str:
        # Hashed so neither the email nor the address sits in Redis in the clear.
        digest = hashlib.sha256(f"{account}\x00{address}".encode()).hexdigest()
        return KEY_PREFIX + digest

    def _retry_after(self, key: str) -> int | None:
        """Seconds until this pair may try again, or ``None`` when it may try now."""

        def read(client: redis.Redis) -> list[Any]:
            pipeline = client.pipeline(transaction=False)
            pipeline.get(key)
            pipeline.ttl(key)
            return pipeline.execute()

        answer = self.redis.run("users.throttle_check", read)
        if answer is None:
            return None
        count, ttl = answer
        if count is None or int(count) < self.max_failures:
            return None
        return max(int(ttl), 1)

    def _count(self, key: str) -> None:
        """Count a failure. The window starts at the first failure and is not extended."""

        def count(client: redis.Redis) -> list[Any]:
            # SET NX EX creates the counter with its TTL; INCR keeps the TTL. In one MULTI,
            # so the key never exists without an expiry (EXPIRE NX needs Redis 7).
            pipeline = client.pipeline(transaction=True)
            pipeline.set(key, 0, ex=self.window_seconds, nx=True)
            pipeline.incr(key)
            return pipeline.execute()

        self.redis.run("users.throttle_count", count)

    def _reset(self, key: str) -> None:
        self.redis.run("users.throttle_reset", lambda client: client.delete(key))
