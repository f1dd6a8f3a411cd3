"""Wires the gateway: its own routes first, then everything else through the proxy."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from redis.asyncio import Redis

from shopstack_common.asgi import RequestContextMiddleware
from shopstack_common.fastapi_support import install_problem_handlers, ops_router
from shopstack_common.health import AsyncCheck
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_gateway.config import GatewaySettings, UpstreamSettings
from shopstack_gateway.proxy import Proxy
from shopstack_gateway.routing import RouteTable


def create_session(upstream: UpstreamSettings) -> aiohttp.ClientSession:
    """One pooled client per upstream, with explicit limits and timeouts."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=upstream.max_connections, keepalive_timeout=30, ttl_dns_cache=30
        ),
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=upstream.connect_timeout_seconds,
            sock_read=upstream.read_timeout_seconds,
        ),
        auto_decompress=False,
        # Pass bodies and redirects through as they are.
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)
    routes = RouteTable(settings.routes)
    unknown = routes.upstreams - settings.upstreams.keys()
    if unknown:
        raise ValueError(f"routes name upstreams that are not configured: {sorted(unknown)}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sessions = {name: create_session(up) for name, up in settings.upstreams.items()}
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        app.state.sessions = sessions
        app.state.redis = redis
        app.router.default = Proxy(
            routes=routes,
            sessions=sessions,
            base_urls={name: up.url for name, up in settings.upstreams.items()},
            max_body_bytes=settings.max_body_bytes,
        )
        try:
            yield
        finally:
            for session in sessions.values():
                await session.close()
            await redis.aclose()

    app = FastAPI(title="shopstack gateway", version="v1", lifespan=lifespan)
    install_problem_handlers(app)

    async def upstream_ready(name: str) -> None:
        url = settings.upstreams[name].url.rstrip("/") + "/readyz"
        async with app.state.sessions[name].get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"{name} /readyz answered {response.status}")

    checks: dict[str, AsyncCheck] = {
        name: functools.partial(upstream_ready, name) for name in sorted(settings.upstreams)
    }
    checks["redis"] = lambda: app.state.redis.ping()  # noqa: PLW0108 - the client exists only once the lifespan runs
    app.include_router(ops_router(checks, timeout=settings.readiness_timeout_seconds))
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(OpenTelemetryMiddleware)
    return app
