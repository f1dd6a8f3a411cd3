"""The token signing keys: the users service's JWKS, fetched and cached.

The set is kept for the ``max-age`` users sends (within configured bounds) and refetched when it
is stale or when a token names a key id it does not hold, which is how a rotated key becomes
known. Refetches are single-flight and at most one per ``min_refresh_seconds``, so a flood of
tokens with made-up key ids costs users one request per interval, not one per token. When users
cannot be reached the keys already known stay in use.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from shopstack_gateway import metrics
from shopstack_gateway.resilience import Clock

logger = logging.getLogger(__name__)

# What made the gateway fetch the signing keys (shopstack_gateway_jwks_refreshes_total).
STARTUP = "startup"
EXPIRED = "expired"
UNKNOWN_KID = "unknown_kid"

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class KeysUnavailableError(Exception):
    """No signing keys are known and the JWKS cannot be fetched right now."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("token signing keys are unavailable")
        self.retry_after = retry_after


@dataclass(frozen=True)
class JwksDocument:
    body: Any
    max_age: float | None


JwksFetcher = Callable[[], Awaitable[JwksDocument]]


def max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def http_fetcher(session: aiohttp.ClientSession, url: str, timeout: float) -> JwksFetcher:
    async def fetch() -> JwksDocument:
        async with session.get(
            url,
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"Accept": "application/json"},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"JWKS at {url} answered {response.status}")
            return JwksDocument(
                body=await response.json(content_type=None),
                max_age=max_age(response.headers.get("Cache-Control")),
            )

    return fetch


def parse_jwks(body: Any, algorithms: frozenset[str]) -> dict[str, PyJWK]:
    """The usable signing keys by kid: public keys for an allowed algorithm. Anything else in the
    set (encryption keys, symmetric keys, keys without a kid) is skipped, never trusted."""
    if not isinstance(body, Mapping) or not isinstance(body.get("keys"), list):
        raise ValueError("not a JWKS document (no keys list)")
    keys: dict[str, PyJWK] = {}
    for jwk in body["keys"]:
        if not isinstance(jwk, Mapping):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct" or "d" in jwk:
            continue
        try:
            key = PyJWK(dict(jwk))
        except (PyJWTError, ValueError, TypeError) as error:
            logger.warning("skipping JWKS key %s: %s", kid, error)
            continue
        if key.algorithm_name in algorithms:
            keys[kid] = key
    return keys


class KeySet:
    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        algorithms: frozenset[str],
        default_ttl: float,
        min_ttl: float,
        max_ttl: float,
        min_refresh_seconds: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.algorithms = algorithms
        self.default_ttl = default_ttl
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    def __contains__(self, kid: str) -> bool:
        return kid in self._keys

    async def get(self, kid: str) -> PyJWK | None:
        """The key for ``kid``; None when the JWKS (refetched if allowed) does not hold it.

        Raises ``KeysUnavailableError`` when no keys are known at all and none can be fetched.
        """
        key = self._keys.get(kid)
        if key is not None:
            # Stale keys stay good while a background fetch brings the new set.
            if self._clock() >= self._expires_at and self._may_refresh():
                self._start_refresh(EXPIRED)
            return key
        if self._may_refresh():
            await self.refresh(UNKNOWN_KID)
        elif self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        if not self._keys:
            raise KeysUnavailableError(self._next_attempt_in())
        return self._keys.get(kid)

    async def refresh(self, trigger: str = STARTUP) -> None:
        """Fetch the JWKS now, or join the fetch already running. Failures are logged and keep
        the keys known so far. ``trigger`` says why, for ``shopstack_gateway_jwks_refreshes``."""
        # Shielded: a client that goes away must not cancel the fetch others are waiting on.
        await asyncio.shield(self._start_refresh(trigger))

    def _start_refresh(self, trigger: str) -> asyncio.Task[None]:
        if self._refreshing is None:
            metrics.JWKS_REFRESHES.labels(trigger).inc()
            self._refreshing = asyncio.create_task(self._refresh())
        return self._refreshing

    async def aclose(self) -> None:
        task, self._refreshing = self._refreshing, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _may_refresh(self) -> bool:
        if self._refreshing is not None:
            return False
        return self._last_attempt is None or self._next_attempt_in() <= 0

    def _next_attempt_in(self) -> float:
        if self._last_attempt is None:
            return 0.0
        return self._last_attempt + self.min_refresh_seconds - self._clock()

    async def _refresh(self) -> None:
        self._last_attempt = self._clock()
        try:
            document = await self._fetch()
            keys = parse_jwks(document.body, self.algorithms)
        except Exception as error:
            metrics.JWKS_FETCHES.labels("error").inc()
            logger.warning(
                "could not fetch the token signing keys (%d known, kept): %s",
                len(self._keys),
                error or type(error).__name__,
            )
            return
        finally:
            self._refreshing = None
        metrics.JWKS_FETCHES.labels("ok").inc()
        ttl = document.max_age if document.max_age is not None else self.default_ttl
        self._keys = keys
        self._expires_at = self._clock() + min(self.max_ttl, max(self.min_ttl, ttl))
        logger.info("loaded %d token signing key(s): %s", len(keys), ", ".join(sorted(keys)))
