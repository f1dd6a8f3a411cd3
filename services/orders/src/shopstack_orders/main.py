"""Wires the orders app: settings, lifespan resources, middleware, routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from redis.asyncio import Redis

from shopstack_common.asgi import RequestContextMiddleware
from shopstack_common.fastapi_support import install_problem_handlers, ops_router
from shopstack_common.logs import BurstLogger, configure_logging
from shopstack_common.telemetry import configure_tracing
from shopstack_orders import db
from shopstack_orders.cache import ProductCache
from shopstack_orders.catalog.router import router as catalog_router
from shopstack_orders.config import OrdersSettings
from shopstack_orders.errors import install_database_handlers
from shopstack_orders.idempotency.service import IdempotencyPolicy, purge_periodically
from shopstack_orders.orders.router import router as orders_router


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(
        settings.otel_service_name or settings.service_name, settings.otel_exporter_otlp_endpoint
    )
    burst_log = BurstLogger(
        logging.getLogger("shopstack_orders.dependencies"),
        quiet_seconds=settings.log_burst_quiet_seconds,
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
        app.state.product_cache = ProductCache(
            redis,
            ttl_seconds=settings.product_cache_ttl_seconds,
            lock_ttl_ms=settings.product_cache_lock_ttl_ms,
            wait_ms=settings.product_cache_wait_ms,
            poll_ms=settings.product_cache_poll_ms,
            retry_after_seconds=settings.redis_retry_after_seconds,
            burst_log=burst_log,
        )
        app.state.idempotency_policy = IdempotencyPolicy(
            retention=timedelta(hours=settings.idempotency_retention_hours),
            lock_timeout_ms=settings.idempotency_lock_timeout_ms,
        )
        purge = None
        if settings.idempotency_purge_interval_seconds > 0:
            purge = asyncio.create_task(
                purge_periodically(
                    session_factory=app.state.session_factory,
                    interval_seconds=settings.idempotency_purge_interval_seconds,
                    batch_size=settings.idempotency_purge_batch_size,
                    burst_log=burst_log,
                )
            )
        try:
            yield
        finally:
            if purge is not None:
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(title="shopstack orders", version="v1", lifespan=lifespan)
    install_problem_handlers(app)
    install_database_handlers(app, burst_log)
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
    app.include_router(orders_router)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(OpenTelemetryMiddleware)
    return app
