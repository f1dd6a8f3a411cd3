"""Wires the orders app: settings, lifespan, handlers, routers, middleware."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shopstack_common.asgi import QueryTextMiddleware, RequestContextMiddleware
from shopstack_common.fastapi_adapter import (
    install_problem_handlers,
    install_problem_openapi,
    ops_router,
)
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_common.tracing import TracingMiddleware
from shopstack_orders.catalog.router import router as catalog_router
from shopstack_orders.config import OrdersSettings
from shopstack_orders.deps import readiness_checks
from shopstack_orders.errors import install_database_handlers
from shopstack_orders.events.router import router as events_router
from shopstack_orders.openapi import statuses_of
from shopstack_orders.orders.router import router as orders_router
from shopstack_orders.resources import open_resources


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings()  # read from the environment
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

    # No trailing-slash redirects: behind the gateway, a redirect would name this service's
    # own address, which no client can (or should) reach. /api/v1/products/ is a 404.
    # The request's SERVER span is TracingMiddleware's (below); FastAPI's own would be a
    # second one, of a trace of its own when no traceparent came in.
    app = FastAPI(
        title="shopstack orders",
        version="v1",
        lifespan=lifespan,
        redirect_slashes=False,
        telemetry={"tracing": False},
    )
    install_problem_handlers(app)
    install_database_handlers(app)
    install_problem_openapi(app, functools.partial(statuses_of, app))
    app.include_router(
        ops_router(
            functools.partial(readiness_checks, app), timeout=settings.readiness_timeout_seconds
        )
    )
    app.include_router(catalog_router)
    # Before the order routes: a WebSocket route is matched on websocket scopes only, but
    # reading the routes top-down should meet the more specific path first.
    app.include_router(events_router)
    app.include_router(orders_router)
    app.add_middleware(QueryTextMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # One SERVER span per request, without a span per ASGI message (as in the gateway).
    app.add_middleware(TracingMiddleware)
    return app
