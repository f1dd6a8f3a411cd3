"""Retention of Idempotency-Key records: those past their retention are deleted in batches,
on a schedule in every process and by ``shopstack-orders purge-idempotency-keys``. A claim
takes over an expired record by itself (``service``): the purge only keeps the table small."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shopstack_common.logs import BurstLogger
from shopstack_orders.idempotency.models import IdempotencyKey

logger = logging.getLogger(__name__)


async def purge_expired(*, session: AsyncSession, batch_size: int) -> int:
    """Delete key records past their retention, in batches; returns how many went."""
    purged = 0
    while True:
        batch = (
            select(IdempotencyKey.caller, IdempotencyKey.key)
            .where(IdempotencyKey.expires_at <= func.now())
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        async with session.begin():
            result = await session.execute(
                delete(IdempotencyKey).where(
                    tuple_(IdempotencyKey.caller, IdempotencyKey.key).in_(batch)
                )
            )
        deleted = int(getattr(result, "rowcount", 0) or 0)
        purged += deleted
        if deleted < batch_size:
            return purged


async def purge_periodically(
    *,
    sessions: async_sessionmaker[AsyncSession],
    interval_seconds: float,
    batch_size: int,
    burst_log: BurstLogger,
) -> None:
    """Run ``purge_expired`` every ``interval_seconds`` until cancelled. Every replica may run
    it: batches skip rows another process holds, so they share the work."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            async with sessions() as session:
                purged = await purge_expired(session=session, batch_size=batch_size)
        except Exception as error:
            burst_log.warning(
                "idempotency-purge", "Purging expired idempotency keys failed: %r", error
            )
            continue
        if purged:
            logger.info("purged %d expired idempotency keys", purged)
