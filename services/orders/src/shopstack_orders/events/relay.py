"""The relay: publishes outbox rows to the Redis stream, one relay at a time.

Leadership is a PostgreSQL session advisory lock taken on one connection, and every batch
runs on that same connection: a relay that loses its connection loses the lease and stops
publishing at once, and a standby (which polls for the lock) takes over. A batch is one
transaction: claim the oldest unpublished rows (``FOR UPDATE SKIP LOCKED``, in ``seq``
order), ``XADD`` them in one ``MULTI``/``EXEC`` (all of the batch or none of it), and only
then mark them published and commit. A crash between the two leaves the rows unpublished,
so the next leader adds them again: delivery is at least once, and consumers drop the
duplicates by event id. Because a batch is added whole and in ``seq`` order, the first copy
of every event is in order, for every order and product.

While Redis is down the batch rolls back and is tried again every ``RELAY_RETRY_SECONDS``;
the outbox keeps every event meanwhile (placing orders never touches Redis for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopstack_common.logs import BurstLogger
from shopstack_orders.config import OrdersSettings
from shopstack_orders.events.models import OutboxEvent
from shopstack_orders.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_LAG,
    OUTBOX_PENDING,
    OUTBOX_PURGED,
    RELAY_ERRORS,
    RELAY_LEADER,
)

logger = logging.getLogger(__name__)

# The advisory lock every relay of this database competes for ("orders relay" in ASCII).
LEASE_KEY = 0x6F72646572732072

_outbox = OutboxEvent.__table__
_unpublished = OutboxEvent.published_at.is_(None)
_POSTGRES_ERRORS = (DBAPIError, InterfaceError, OSError)


def stream_fields(row: Row[Any]) -> dict[str, str]:
    """An outbox row as a stream entry: every field a string (the event schema, in orders'
    README)."""
    return {
        "id": str(row.id),
        "type": row.type,
        "subject": row.subject,
        "subject_id": str(row.subject_id),
        "version": str(row.version),
        "user_id": str(row.user_id) if row.user_id is not None else "",
        "occurred_at": row.occurred_at.isoformat(),
        "payload": json.dumps(row.payload, separators=(",", ":"), sort_keys=True),
    }


class Relay:
    def __init__(self, *, settings: OrdersSettings, engine: AsyncEngine, redis: Redis) -> None:
        self.settings = settings
        self.engine = engine
        self.redis = redis
        self.burst_log = BurstLogger(logger, quiet_seconds=settings.log_burst_quiet_seconds)
        self._next_purge = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by for the lease, then publish until ``stop`` is set; survives PostgreSQL
        and Redis going away and coming back."""
        while not stop.is_set():
            try:
                async with self.engine.connect() as connection:
                    if await self._take_lease(connection):
                        logger.info("relay holds the lease; publishing to %s", self.stream)
                        try:
                            await self._lead(connection, stop)
                        finally:
                            # A standby measures nothing: only the leader's figures count.
                            RELAY_LEADER.set(0)
                            OUTBOX_LAG.set(0)
                            OUTBOX_PENDING.set(0)
                            with contextlib.suppress(*_POSTGRES_ERRORS):
                                await self._drop_lease(connection)
                        continue
            except _POSTGRES_ERRORS as error:
                RELAY_ERRORS.labels("postgres").inc()
                self.burst_log.warning("relay.postgres", "relay cannot reach PostgreSQL: %s", error)
            await _sleep(stop, self.settings.relay_retry_seconds)

    @property
    def stream(self) -> str:
        return self.settings.events_stream

    async def _take_lease(self, connection: AsyncConnection) -> bool:
        held = await connection.scalar(select(func.pg_try_advisory_lock(LEASE_KEY)))
        await connection.commit()
        return bool(held)

    async def _drop_lease(self, connection: AsyncConnection) -> None:
        await connection.scalar(select(func.pg_advisory_unlock(LEASE_KEY)))
        await connection.commit()

    async def _lead(self, connection: AsyncConnection, stop: asyncio.Event) -> None:
        RELAY_LEADER.set(1)
        self.burst_log.recovered("relay.postgres", "relay reaches PostgreSQL again")
        while not stop.is_set():
            try:
                published = await self.publish_batch(connection)
            except RedisError as error:
                RELAY_ERRORS.labels("redis").inc()
                self.burst_log.warning("relay.redis", "relay cannot publish to Redis: %s", error)
                await self._measure(connection)
                await _sleep(stop, self.settings.relay_retry_seconds)
                continue
            if published:
                self.burst_log.recovered("relay.redis", "relay publishes to Redis again")
            await self._measure(connection)
            if time.monotonic() >= self._next_purge:
                await self.purge(connection)
                self._next_purge = time.monotonic() + self.settings.outbox_purge_interval_seconds
            if published < self.settings.relay_batch_size:
                await _sleep(stop, self.settings.relay_poll_interval_seconds)

    async def publish_batch(self, connection: AsyncConnection) -> int:
        """Publish the oldest unpublished rows; how many. Raises RedisError with the batch
        left unpublished."""
        async with connection.begin():
            rows = (
                await connection.execute(
                    select(_outbox)
                    .where(_unpublished)
                    .order_by(OutboxEvent.seq)
                    .limit(self.settings.relay_batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await self._add_to_stream(rows)
            await connection.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
        for row in rows:
            EVENTS_PUBLISHED.labels(row.type).inc()
        return len(rows)

    async def _add_to_stream(self, rows: Sequence[Row[Any]]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for row in rows:
                pipe.xadd(
                    self.stream,
                    stream_fields(row),  # type: ignore[arg-type]
                    maxlen=self.settings.events_stream_maxlen,
                    approximate=True,
                )
            await pipe.execute()

    async def _measure(self, connection: AsyncConnection) -> None:
        async with connection.begin():
            oldest, pending = (
                await connection.execute(
                    select(
                        func.extract("epoch", func.now() - func.min(OutboxEvent.occurred_at)),
                        func.count(),
                    ).where(_unpublished)
                )
            ).one()
        OUTBOX_LAG.set(max(float(oldest or 0), 0.0))
        OUTBOX_PENDING.set(pending)

    async def purge(self, connection: AsyncConnection) -> int:
        """Delete published rows past ``OUTBOX_RETENTION_HOURS``, in batches; how many."""
        purged = 0
        while True:
            async with connection.begin():
                doomed = (
                    select(OutboxEvent.id)
                    .where(
                        OutboxEvent.published_at
                        < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, self._retention)
                    )
                    .limit(self.settings.outbox_purge_batch_size)
                    .with_for_update(skip_locked=True)
                )
                result = await connection.execute(
                    delete(OutboxEvent).where(OutboxEvent.id.in_(doomed))
                )
            count = result.rowcount or 0
            purged += count
            OUTBOX_PURGED.inc(count)
            if count < self.settings.outbox_purge_batch_size:
                return purged

    @property
    def _retention(self) -> float:
        return self.settings.outbox_retention_hours * 3600


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
