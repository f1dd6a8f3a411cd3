"""Wires the orders app: settings, lifespan resources, middleware, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from redis.asyncio import Redis

from shopstack_common.asgi import RequestContextMiddleware
from shopstack_common.fastapi_support import install_problem_handlers, ops_router
from shopstack_common.logs import configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_orders import db
from shopstack_orders.catalog.router import router as catalog_router
from shopstack_orders.config import OrdersSettings


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(
        settings.otel_service_name or settings.service_name, settings.otel_exporter_otlp_endpoint
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = db.create_engine(settings)
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            decode_responses=True,
        )
        app.state.settings = settings
        app.state.engine = engine
        app.state.session_factory = db.create_session_factory(engine)
        app.state.redis = redis
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(title="shopstack orders", version="v1", lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(
        ops_router(
            # Lambdas, because the engine and client exist only once the lifespan runs.
            {
                "postgres": lambda: db.ping(app.state.engine),
                "redis": lambda: app.state.redis.ping(),  # noqa: PLW0108
            },
            timeout=settings.readiness_timeout_seconds,
        )
    )
    app.include_router(catalog_router)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(OpenTelemetryMiddleware)
    return app
