"""What the gateway holds while it runs: the upstream clients, Redis, the signing keys, the token
verifier, the rate limiter and the proxy. Built in the lifespan, closed there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.keys import KeySet, http_fetcher
from shopstack_gateway.openapi import OpenAPIMerger
from shopstack_gateway.proxy import Proxy
from shopstack_gateway.ratelimit import RateLimiter
from shopstack_gateway.tokens import TokenVerifier
from shopstack_gateway.upstreams import Upstream, close_all, create_session

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: GatewaySettings
    upstreams: dict[str, Upstream]
    redis: Redis
    keys: KeySet
    verifier: TokenVerifier
    limiter: RateLimiter | None
    proxy: Proxy
    openapi: OpenAPIMerger


@asynccontextmanager
async def running(settings: GatewaySettings) -> AsyncIterator[Runtime]:
    upstreams = {
        name: Upstream(name, upstream, create_session(upstream))
        for name, upstream in settings.upstreams.items()
    }
    # Its own small client: the JWKS may live anywhere, and key fetches must not queue behind
    # proxied traffic.
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
    runtime = Runtime(
        settings=settings,
        upstreams=upstreams,
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
            RateLimiter(redis, fail_open=settings.rate_limit.fail_open)
            if settings.rate_limit.enabled
            else None
        ),
        proxy=Proxy(upstreams=upstreams, max_body_bytes=settings.max_body_bytes),
        openapi=OpenAPIMerger(settings=settings, upstreams=upstreams),
    )
    # Keys are fetched ahead of the first token when users already answers; when it does not,
    # the first token fetches them.
    preload = asyncio.create_task(keys.refresh())
    try:
        yield runtime
    finally:
        preload.cancel()
        await keys.aclose()
        await close_all(upstreams)
        await jwks_session.close()
        await redis.aclose()
