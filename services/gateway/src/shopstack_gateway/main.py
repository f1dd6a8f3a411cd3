"""Wires the gateway.

What uvicorn serves is a plain ASGI stack: tracing, then the request context (request id,
metrics, access log), then the edge (identity, rate limit, proxy). Proxied paths end there and
never enter FastAPI; its routing and middleware would be most of a proxied request's cost.
FastAPI serves only the gateway's own routes: health, docs, the OpenAPI document, the overview.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from shopstack_common.asgi import (
    InternalErrorMiddleware,
    Receive,
    RequestContextMiddleware,
    Scope,
    Send,
)
from shopstack_common.fastapi_support import install_problem_handlers, ops_router
from shopstack_common.health import AsyncCheck
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_gateway import docs
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.edge import EdgeMiddleware
from shopstack_gateway.overview.router import router as overview_router
from shopstack_gateway.runtime import Runtime, running


class GatewayApp:
    """The ASGI app: the edge stack around the gateway's own FastAPI app (``api``), whose
    lifespan (started by any ASGI server through this app) builds the runtime."""

    def __init__(self, api: FastAPI, settings: GatewaySettings) -> None:
        self.api = api
        edge = EdgeMiddleware(api, settings=settings, runtime=lambda: self.runtime)
        # Spans for the requests only: one per message sent or received would cost more than
        # the proxying itself.
        self._stack = OpenTelemetryMiddleware(
            RequestContextMiddleware(edge), exclude_spans=["receive", "send"]
        )

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.api.state.runtime
        return runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stack(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
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
    app.add_middleware(InternalErrorMiddleware)
    return GatewayApp(app, settings)
