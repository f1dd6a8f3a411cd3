"""The product read cache in Redis: versioned keys, a rebuild lock per key, and PostgreSQL
whenever Redis cannot answer.

Invalidation bumps a generation number instead of deleting entries. Every value key embeds
the generation that was current when its reader started, so a reader that loaded a row just
before a write committed stores its (stale) copy under a generation nobody reads any more;
deleting keys instead would let that late write resurrect stale data until the TTL. One
generation per product guards its item entry; one shared generation guards every list page,
since any product write can change any page.

Concurrent misses on one key are collapsed by a lock in Redis (``SET NX PX``): its holder
rebuilds the entry from PostgreSQL while the others poll briefly for the result. One
mechanism covers every worker process and replica; the lock expires by itself if its
holder dies. A waiter that sees no result within ``wait_ms`` reads PostgreSQL itself, so a
slow rebuild delays readers by at most that long.

Redis is an optimisation: any Redis error (down, slow, refusing) turns a read into a plain
PostgreSQL read, counted in ``shopstack_dependency_fallbacks_total``, and after a failure
reads and invalidations skip Redis for ``retry_after_seconds`` (``shopstack_common.backoff``)
rather than paying its timeout on every request. An invalidation that failed or was skipped
is kept and sent with the next one, or before the next read, that reaches Redis: entries it
would have made unreachable are not served once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopstack_common.backoff import BackOff
from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import DEPENDENCY_FALLBACKS, CacheResult, observe_cache_lookup
from shopstack_orders.metrics import (
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_REBUILDS,
    CACHE_UNCACHED_READS,
)

logger = logging.getLogger(__name__)

PREFIX = "orders:"
# The entry kinds, also the caches' names in shopstack_cache_lookups_total.
ITEM = "product"
LIST = "product_list"
LIST_GENERATION_KEY = f"{PREFIX}products:gen"

# Reads the generation (creating it when missing) and the value stored under it, in one
# round trip. A missing generation starts from a time-based number rather than 1, so it can
# never match the generation of entries left over from before it was lost.
_READ_SCRIPT = """
local generation = redis.call('GET', KEYS[1])
if not generation then
  generation = ARGV[2]
  redis.call('SET', KEYS[1], generation, 'EX', ARGV[3])
end
return {generation, redis.call('GET', ARGV[1] .. generation)}
"""

_BUMP_SCRIPT = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('INCR', key)
  else
    redis.call('SET', key, ARGV[1])
  end
  redis.call('EXPIRE', key, ARGV[2])
end
return #KEYS
"""

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def item_generation_key(product_id: uuid.UUID) -> str:
    # The hash tag keeps a product's keys in one cluster slot, as a script touching them needs.
    return f"{PREFIX}product:{{{product_id}}}:gen"


def item_value_prefix(product_id: uuid.UUID) -> str:
    return f"{PREFIX}product:{{{product_id}}}:v"


def list_value_prefix(digest: str) -> str:
    return f"{PREFIX}products:{digest}:v"


class ProductCache:
    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        lock_ttl_ms: int,
        wait_ms: int,
        poll_ms: int,
        retry_after_seconds: float,
        burst_log: BurstLogger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        # Generations outlive every value that embeds them.
        self._generation_ttl = max(86_400, 4 * ttl_seconds)
        self._lock_ttl_ms = lock_ttl_ms
        self._wait = wait_ms / 1000
        self._poll = poll_ms / 1000
        self._burst_log = burst_log
        self._clock = clock
        self._backoff = BackOff(retry_after_seconds, clock=clock)
        # Products whose invalidation has not reached Redis yet.
        self._pending: set[uuid.UUID] = set()
        self._read = redis.register_script(_READ_SCRIPT)
        self._bump = redis.register_script(_BUMP_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    # -- reads --------------------------------------------------------------------------

    async def item(self, product_id: uuid.UUID, build: Callable[[], Awaitable[str]]) -> str:
        return await self._get(
            ITEM, item_generation_key(product_id), item_value_prefix(product_id), build
        )

    async def page(self, digest: str, build: Callable[[], Awaitable[str]]) -> str:
        return await self._get(LIST, LIST_GENERATION_KEY, list_value_prefix(digest), build)

    async def _get(
        self,
        kind: str,
        generation_key: str,
        value_prefix: str,
        build: Callable[[], Awaitable[str]],
    ) -> str:
        if self._backoff.skipping:
            observe_cache_lookup(kind, CacheResult.FALLBACK)
            return await self._uncached(kind, "redis_unavailable", build)
        try:
            if self._pending:
                await self._send_invalidations(())
            generation, value = await self._read(
                keys=[generation_key],
                args=[value_prefix, time.time_ns(), self._generation_ttl],
            )
        except RedisError as error:
            self._redis_failed("products.read", error)
            observe_cache_lookup(kind, CacheResult.FALLBACK)
            return await self._uncached(kind, "redis_unavailable", build)
        if value is not None:
            CACHE_HITS.labels(kind).inc()
            observe_cache_lookup(kind, CacheResult.HIT)
            return str(value)
        CACHE_MISSES.labels(kind).inc()
        observe_cache_lookup(kind, CacheResult.MISS)
        try:
            return await self._rebuild_once(kind, f"{value_prefix}{generation}", build)
        except RedisError as error:
            self._redis_failed("products.rebuild", error)
            return await self._uncached(kind, "redis_unavailable", build)

    async def _rebuild_once(
        self, kind: str, value_key: str, build: Callable[[], Awaitable[str]]
    ) -> str:
        lock_key = f"{PREFIX}lock:{value_key}"
        token = uuid.uuid4().hex
        deadline = self._clock() + self._wait
        while True:
            if await self._redis.set(lock_key, token, nx=True, px=self._lock_ttl_ms):
                try:
                    # The previous holder may have filled the entry between our read and
                    # our lock; then there is nothing to rebuild.
                    value: Any = await self._redis.get(value_key)
                    if value is not None:
                        return str(value)
                    fresh = await build()
                    CACHE_REBUILDS.labels(kind).inc()
                    try:
                        await self._redis.set(value_key, fresh, ex=self._ttl)
                    except RedisError as error:
                        self._redis_failed("products.store", error)
                    return fresh
                finally:
                    await self._release_quietly(lock_key, token)
            await asyncio.sleep(self._poll)
            value = await self._redis.get(value_key)
            if value is not None:
                return str(value)
            if self._clock() >= deadline:
                return await self._uncached(kind, "lock_wait_expired", build)

    async def _release_quietly(self, lock_key: str, token: str) -> None:
        try:
            await self._release(keys=[lock_key], args=[token])
        except RedisError as error:
            # The lock expires by itself; waiters read PostgreSQL after wait_ms meanwhile.
            self._redis_failed("products.unlock", error)

    async def _uncached(self, kind: str, reason: str, build: Callable[[], Awaitable[str]]) -> str:
        CACHE_UNCACHED_READS.labels(kind, reason).inc()
        return await build()

    # -- writes -------------------------------------------------------------------------

    async def invalidate(self, product_ids: Iterable[uuid.UUID]) -> None:
        """Make every cached entry showing these products unreachable. Call after the write
        committed. A Redis failure is logged and counted, and the write stands: entries the
        failure left behind live at most ``ttl_seconds``."""
        if self._backoff.skipping:
            self._pending.update(product_ids)
            return
        try:
            await self._send_invalidations(product_ids)
        except RedisError as error:
            self._redis_failed("products.invalidate", error)

    async def _send_invalidations(self, product_ids: Iterable[uuid.UUID]) -> None:
        """Bump the generations of ``product_ids`` and of every pending product, and the
        list generation; what does not reach Redis stays pending."""
        self._pending.update(product_ids)
        sent = set(self._pending)
        keys = [item_generation_key(product_id) for product_id in sorted(sent)]
        keys.append(LIST_GENERATION_KEY)
        await self._bump(keys=keys, args=[time.time_ns(), self._generation_ttl])
        self._pending -= sent

    # -- Redis health -------------------------------------------------------------------

    def _redis_failed(self, operation: str, error: RedisError) -> None:
        DEPENDENCY_FALLBACKS.labels("redis", operation).inc()
        self._backoff.failed()
        self._burst_log.warning(
            "redis",
            "Redis failed (%s: %s); product reads use PostgreSQL for the next %.1fs",
            operation,
            error,
            self._backoff.seconds,
        )
