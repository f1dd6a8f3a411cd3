"""What the gateway holds while it runs: the upstream clients, Redis, the signing keys, the token
verifier, the rate limiter, the proxy, the OpenAPI merger and the key preload. Built and closed
in one place, ``open_resources``, which the lifespan enters.

Readiness is about the gateway itself (``readiness_checks``): nothing it depends on makes it
unready unless the gateway cannot serve without it. The upstreams never do: a failing one is
answered for by its circuit breaker, route by route. Redis makes the gateway unready only when
the rate limiter fails closed; failing open (the default), a Redis outage lets requests pass
unlimited, and /readyz says ``degraded``. Signing keys not loaded yet (users unreachable since
start-up) is ``degraded`` too: public routes still work, token-bearing requests get 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.applications import Starlette

from shopstack_common.health import AsyncCheck, NonCriticalCheck
from shopstack_common.shutdown import GoingAway
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.events.tickets import TicketStore
from shopstack_gateway.keys import STARTUP, KeySet, http_fetcher
from shopstack_gateway.openapi import OpenAPIMerger
from shopstack_gateway.proxy import Proxy
from shopstack_gateway.ratelimit import RateLimiter
from shopstack_gateway.resilience import BreakerState
from shopstack_gateway.tokens import TokenVerifier
from shopstack_gateway.upstreams import Upstream, close_all, create_session
from shopstack_gateway.websocket_proxy import WebSocketProxy


@dataclass
class Resources:
    settings: GatewaySettings
    upstreams: dict[str, Upstream]
    # Its own small client: the JWKS may live anywhere, and key fetches must not queue behind
    # proxied traffic.
    jwks_session: aiohttp.ClientSession
    redis: Redis
    keys: KeySet
    verifier: TokenVerifier
    limiter: RateLimiter | None
    proxy: Proxy
    openapi: OpenAPIMerger
    tickets: TicketStore
    websocket_proxy: WebSocketProxy
    going_away: GoingAway
    key_preload: asyncio.Task[None] | None = None

    def readiness_checks(self) -> dict[str, AsyncCheck]:
        checks: dict[str, AsyncCheck] = {"signing_keys": NonCriticalCheck(self._keys_loaded)}
        for name in sorted(self.upstreams):
            checks[f"upstream_{name}"] = NonCriticalCheck(self._circuit_check(name))
        if self.limiter is not None:
            checks["redis"] = (
                NonCriticalCheck(self._redis_answers)
                if self.limiter.fail_open
                else self._redis_answers
            )
        return checks

    async def _keys_loaded(self) -> None:
        # Looks, never fetches: /readyz must not depend on users answering.
        if not self.keys.loaded:
            raise RuntimeError("no token signing keys loaded yet; token-bearing requests get 503")

    def _circuit_check(self, name: str) -> AsyncCheck:
        breaker = self.upstreams[name].breaker

        async def circuit_closed() -> None:
            if breaker.state is BreakerState.OPEN:
                raise RuntimeError(f"circuit open: {name} is answered with 503 for now")

        return circuit_closed

    async def _redis_answers(self) -> None:
        await self.redis.ping()


@asynccontextmanager
async def open_resources(settings: GatewaySettings) -> AsyncIterator[Resources]:
    upstreams = {
        name: Upstream(name, upstream, create_session(upstream))
        for name, upstream in settings.upstreams.items()
    }
    jwks_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        # The limiter decides what a failure means; a retry loop inside the client would only
        # add its backoff to every request while Redis is down.
        retry=Retry(NoBackoff(), 0),
    )
    keys = KeySet(
        http_fetcher(jwks_session, settings.resolved_jwks_url, settings.jwks_timeout_seconds),
        algorithms=settings.jwt_algorithms,
        default_ttl=settings.jwks_default_ttl_seconds,
        min_ttl=settings.jwks_min_ttl_seconds,
        max_ttl=settings.jwks_max_ttl_seconds,
        min_refresh_seconds=settings.jwks_min_refresh_seconds,
    )
    going_away = GoingAway(grace_seconds=settings.websocket_shutdown_grace_seconds)
    going_away.install()
    resources = Resources(
        settings=settings,
        upstreams=upstreams,
        jwks_session=jwks_session,
        redis=redis,
        keys=keys,
        verifier=TokenVerifier(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            leeway_seconds=settings.jwt_leeway_seconds,
            cache_size=settings.verified_token_cache_size,
        ),
        limiter=(
            RateLimiter(
                redis,
                fail_open=settings.rate_limit.fail_open,
                cooldown_seconds=settings.redis_retry_after_seconds,
            )
            if settings.rate_limit.enabled
            else None
        ),
        proxy=Proxy(upstreams=upstreams, max_body_bytes=settings.max_body_bytes),
        openapi=OpenAPIMerger(settings=settings, upstreams=upstreams),
        tickets=TicketStore(redis, ttl_seconds=settings.websocket_ticket_ttl_seconds),
        websocket_proxy=WebSocketProxy(
            upstreams=upstreams, settings=settings, going_away=going_away
        ),
        going_away=going_away,
    )
    # Keys are fetched ahead of the first token when users already answers; when it does not,
    # the first token fetches them.
    resources.key_preload = asyncio.create_task(keys.refresh(STARTUP))
    try:
        yield resources
    finally:
        going_away.uninstall()
        resources.key_preload.cancel()
        await keys.aclose()
        await close_all(upstreams)
        await jwks_session.close()
        await redis.aclose()


def resources_of(app: Starlette) -> Resources:
    """The resources the app's lifespan opened."""
    resources: Resources = app.state.resources
    return resources
