"""Wires the gateway: the edge middleware (auth, rate limit, proxy) in front of its own routes."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from shopstack_common.asgi import RequestContextMiddleware
from shopstack_common.fastapi_support import install_problem_handlers, ops_router
from shopstack_common.health import AsyncCheck
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_gateway import docs
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.edge import EdgeMiddleware
from shopstack_gateway.overview.router import router as overview_router
from shopstack_gateway.runtime import Runtime, running


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings) as runtime:
            app.state.runtime = runtime
            yield

    # The documents and docs pages are the gateway's own (merged), not FastAPI's defaults.
    app = FastAPI(
        title="shopstack gateway", version="v1", lifespan=lifespan,
        openapi_url=None, docs_url=None, redoc_url=None,
    )  # fmt: skip
    install_problem_handlers(app)

    def runtime() -> Runtime:
        current: Runtime = app.state.runtime
        return current

    async def upstream_ready(name: str) -> None:
        upstream = runtime().upstreams[name]
        async with upstream.session.get(upstream.base_url + "/readyz") as response:
            if response.status != 200:
                raise RuntimeError(f"{name} /readyz answered {response.status}")

    checks: dict[str, AsyncCheck] = {
        name: functools.partial(upstream_ready, name) for name in sorted(settings.upstreams)
    }

    async def redis_ready() -> None:
        await runtime().redis.ping()

    checks["redis"] = redis_ready
    app.include_router(ops_router(checks, timeout=settings.readiness_timeout_seconds))
    app.include_router(docs.router)
    app.mount(docs.ASSETS_PATH, docs.swagger_assets(), name="swagger-assets")
    app.include_router(overview_router)
    app.add_middleware(EdgeMiddleware, settings=settings, runtime=runtime)
    app.add_middleware(RequestContextMiddleware)
    # Spans for the requests only: one per message sent or received would cost more than the
    # proxying itself.
    app.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])
    return app
