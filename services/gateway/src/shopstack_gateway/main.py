"""Wires the gateway.

What uvicorn serves is a plain ASGI stack: tracing, then the request context (request id,
metrics, access log), then the edge chain (``middleware/``: strip identity headers →
authenticate → rate-limit → dispatch). Proxied paths end in dispatch and never enter FastAPI;
FastAPI serves only the gateway's own routes: health, docs, the OpenAPI document, the problem
types and the overview.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shopstack_common.asgi import (
    ASGIApp,
    InternalErrorMiddleware,
    Receive,
    RequestContextMiddleware,
    Scope,
    Send,
)
from shopstack_common.fastapi_adapter import install_problem_handlers, ops_router
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_common.tracing import TracingMiddleware
from shopstack_gateway import docs
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.events.router import TICKET_PATH
from shopstack_gateway.events.router import router as events_router
from shopstack_gateway.middleware.authentication import AuthenticationMiddleware
from shopstack_gateway.middleware.dispatch import DispatchMiddleware
from shopstack_gateway.middleware.identity_headers import StripIdentityHeadersMiddleware
from shopstack_gateway.middleware.rate_limit import RateLimitMiddleware
from shopstack_gateway.middleware.synthetic import SyntheticTrafficMiddleware
from shopstack_gateway.overview.router import router as overview_router
from shopstack_gateway.problems.router import router as problems_router
from shopstack_gateway.resources import open_resources, resources_of
from shopstack_gateway.routing import PublicRoutes, RouteTable


class GatewayApp:
    """The ASGI app: the edge stack around the gateway's own FastAPI app (``api``), whose
    lifespan (started by any ASGI server through this app) opens the resources."""

    def __init__(self, api: FastAPI, settings: GatewaySettings) -> None:
        self.api = api
        routes = RouteTable(settings.routes)
        edge: ASGIApp = DispatchMiddleware(
            api,
            routes=routes,
            public=PublicRoutes(settings.public_routes),
            proxy=lambda: resources_of(api).proxy,
            websocket_proxy=lambda: resources_of(api).websocket_proxy,
            own_paths=frozenset({TICKET_PATH}),
        )
        edge = RateLimitMiddleware(
            edge, settings=settings.rate_limit, limiter=lambda: resources_of(api).limiter
        )
        edge = AuthenticationMiddleware(
            edge,
            verifier=lambda: resources_of(api).verifier,
            tickets=lambda: resources_of(api).tickets,
        )
        edge = StripIdentityHeadersMiddleware(edge)
        edge = SyntheticTrafficMiddleware(edge)
        self._stack = TracingMiddleware(RequestContextMiddleware(edge, route_of=routes.route_name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stack(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
    settings = settings or GatewaySettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(
        settings.tracing_service_name,
        settings.otel_exporter_otlp_endpoint,
        settings.otel_traces_sampler_arg,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            yield

    # The documents and docs pages are the gateway's own (merged), not FastAPI's defaults.
    app = FastAPI(
        # The request's server span is the gateway's (TracingMiddleware, around the whole
        # stack so that proxied requests are traced too). FastAPI's own would begin a second,
        # unrelated trace whenever no traceparent came in, and the overview's calls to users
        # and orders would carry that one.
        telemetry={"tracing": False},
        title="shopstack gateway",
        version="v1",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # operationIds are the route functions' names, which links and clients read.
        generate_unique_id_function=lambda route: route.name,
    )
    install_problem_handlers(app)
    app.include_router(
        ops_router(
            lambda: resources_of(app).readiness_checks(),
            timeout=settings.readiness_timeout_seconds,
            # With a port of their own, the metrics are not served with the API.
            metrics=settings.metrics_port is None,
        )
    )
    app.include_router(docs.router)
    app.mount(docs.ASSETS_PATH, docs.swagger_assets(), name="swagger-assets")
    app.include_router(problems_router)
    app.include_router(overview_router)
    app.include_router(events_router)
    app.add_middleware(InternalErrorMiddleware)
    return GatewayApp(app, settings)
