"""Everything the orders service builds at start-up, created and closed in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shopstack_common.health import AsyncCheck
from shopstack_common.logs import BurstLogger
from shopstack_common.shutdown import GoingAway
from shopstack_orders import db
from shopstack_orders.cache import ProductCache
from shopstack_orders.config import OrdersSettings
from shopstack_orders.events.live import ConnectionSlots
from shopstack_orders.idempotency.retention import purge_periodically
from shopstack_orders.idempotency.service import IdempotencyPolicy

DEPENDENCY_LOGGER = "shopstack_orders.dependencies"


@dataclass
class Resources:
    settings: OrdersSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    product_cache: ProductCache
    idempotency_policy: IdempotencyPolicy
    # Warnings about failing dependencies (PostgreSQL, Redis, the purge), once per burst.
    burst_log: BurstLogger
    # Deletes expired Idempotency-Key records; None when IDEMPOTENCY_PURGE_INTERVAL_SECONDS=0.
    purge: asyncio.Task[None] | None
    # The event WebSockets' own client: its reads block for EVENTS_WS_BLOCK_MS, far past the
    # cache's short timeout.
    events_redis: Redis
    connection_slots: ConnectionSlots
    going_away: GoingAway

    def readiness_checks(self) -> dict[str, AsyncCheck]:
        return {"postgres": self._ping_postgres, "redis": self._ping_redis}

    async def _ping_postgres(self) -> None:
        await db.ping(self.engine)

    async def _ping_redis(self) -> None:
        await self.redis.ping()


@asynccontextmanager
async def open_resources(settings: OrdersSettings) -> AsyncIterator[Resources]:
    burst_log = BurstLogger(
        logging.getLogger(DEPENDENCY_LOGGER), quiet_seconds=settings.log_burst_quiet_seconds
    )
    engine = db.create_engine(settings)
    sessions = db.create_session_factory(engine)
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        decode_responses=True,
        # The back-off decides when to try again (as in users and the gateway); redis-py's
        # retries, were its default to change, would multiply the timeout a hung Redis costs.
        retry=Retry(NoBackoff(), 0),
    )
    purge = None
    if settings.idempotency_purge_interval_seconds > 0:
        purge = asyncio.create_task(
            purge_periodically(
                sessions=sessions,
                interval_seconds=settings.idempotency_purge_interval_seconds,
                batch_size=settings.idempotency_purge_batch_size,
                burst_log=burst_log,
            )
        )
    events_redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.events_ws_block_ms / 1000 + 5,
        # Connections are opened as WebSockets arrive, many at once after a failover.
        socket_connect_timeout=max(settings.redis_timeout_seconds, 2.0),
        # One connection per WebSocket blocks in XREAD, plus a few for the slot claims.
        max_connections=settings.events_ws_max_connections_per_process + 64,
        decode_responses=True,
    )
    going_away = GoingAway(grace_seconds=settings.events_ws_shutdown_grace_seconds)
    going_away.install()
    resources = Resources(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        product_cache=ProductCache(
            redis,
            ttl_seconds=settings.product_cache_ttl_seconds,
            lock_ttl_ms=settings.product_cache_lock_ttl_ms,
            wait_ms=settings.product_cache_wait_ms,
            poll_ms=settings.product_cache_poll_ms,
            retry_after_seconds=settings.redis_retry_after_seconds,
            burst_log=burst_log,
        ),
        idempotency_policy=IdempotencyPolicy(
            retention=timedelta(hours=settings.idempotency_retention_hours),
            lock_timeout_ms=settings.idempotency_lock_timeout_ms,
        ),
        burst_log=burst_log,
        purge=purge,
        events_redis=events_redis,
        # The WebSocket's client: a claim is part of opening a connection, which may wait a
        # little, unlike a cached read that falls back to PostgreSQL after 0.25 s.
        connection_slots=ConnectionSlots(
            events_redis,
            limit=settings.events_ws_max_connections_per_user,
            lease_seconds=settings.events_ws_connection_lease_seconds,
        ),
        going_away=going_away,
    )
    try:
        yield resources
    finally:
        if purge is not None:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
        going_away.uninstall()
        await events_redis.aclose()
        await redis.aclose()
        await engine.dispose()
