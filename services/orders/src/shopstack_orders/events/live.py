"""Live events for one WebSocket: the stream read by a consumer of its own, filtered to what
the caller may see, written to the client with a bounded queue.

* **Who sees what.** A customer gets the events of their own orders (``user_id``); an
  administrator every event, stock included. ``order_id`` narrows it to one order, which the
  caller must be allowed to read (checked before the upgrade is accepted).
* **Resume.** Each message carries its ``stream_id``; a client that reconnects with
  ``last_event_id=<stream_id>`` gets every later entry of the stream (``XREAD`` from that id),
  so nothing between two connections is missed while the stream still holds it
  (``EVENTS_STREAM_MAXLEN``). Without it the connection starts at the stream's end.
* **Duplicates.** The relay may publish an event twice; the ids seen lately are remembered
  and a second copy is not sent.
* **Backpressure.** The reader puts messages in a queue of ``EVENTS_WS_QUEUE_SIZE``; when the
  client reads so slowly that it fills, the connection is closed with ``4001`` (the client
  reconnects with its last id when it can keep up). Nothing waits in memory beyond the queue.
* **Idle.** A connection that delivered nothing for ``EVENTS_WS_IDLE_TIMEOUT_SECONDS`` is
  closed with ``4008``; pings (the server's, every ``WS_PING_INTERVAL_SECONDS``) keep a live
  one open through proxies meanwhile.
* **Shutdown.** ``GoingAway`` closes every connection with ``1001`` before the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopstack_common.identity import Identity

# Close codes (RFC 6455 §7.4: 4000-4999 are the application's).
CLOSE_CLIENT_LEFT = 1000  # the client closed: nothing is sent back
CLOSE_GOING_AWAY = 1001
CLOSE_SLOW_CONSUMER = 4001
CLOSE_STREAM_UNAVAILABLE = 4003
CLOSE_IDLE = 4008
_SEEN = 1024  # event ids remembered for dropping duplicates
_READ_ATTEMPTS = 5  # XREAD failures in a row before the stream counts as down


@dataclass(frozen=True)
class Watch:
    viewer: Identity
    order_id: uuid.UUID | None

    def shows(self, fields: dict[str, str]) -> bool:
        if self.order_id is not None and fields.get("subject_id") != str(self.order_id):
            return False
        if self.viewer.is_admin:
            return True
        return self.viewer.user_id is not None and fields.get("user_id") == str(self.viewer.user_id)


def message(stream_id: str, fields: dict[str, str]) -> str:
    """What the client receives for one stream entry (orders' README: Live order events)."""
    return json.dumps(
        {
            "stream_id": stream_id,
            "id": fields["id"],
            "type": fields["type"],
            "subject": fields["subject"],
            "subject_id": fields["subject_id"],
            "version": int(fields["version"]),
            "occurred_at": fields["occurred_at"],
            "payload": json.loads(fields["payload"]),
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Closed:
    """How a connection ended: the close code sent, its reason, and the metric's label."""

    code: int
    reason: str
    label: str


async def stream_events(
    *,
    redis: Redis,
    stream: str,
    watch: Watch,
    last_id: str | None,
    queue_size: int,
    block_ms: int,
    idle_timeout_seconds: float,
    send_text: Callable[[str], Awaitable[None]],
    disconnected: Callable[[], Awaitable[None]],
    going_away: asyncio.Event,
) -> Closed:
    """Read ``stream`` after ``last_id`` (its end when None) and send what ``watch`` shows
    until the client is too slow, idle, or the server goes away; how it ended."""
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
    seen: OrderedDict[str, None] = OrderedDict()
    delivered = asyncio.Event()

    async def read() -> Closed:
        position = last_id or "$"
        failures = 0
        while True:
            try:
                batches: Any = await redis.xread({stream: position}, count=100, block=block_ms)
                failures = 0
            except RedisError:
                # A blip (a connect that timed out under load) is retried from the same
                # position, so nothing is skipped; an outage ends the connection.
                failures += 1
                if failures >= _READ_ATTEMPTS:
                    return Closed(
                        CLOSE_STREAM_UNAVAILABLE,
                        "the event stream does not answer",
                        "stream_unavailable",
                    )
                await asyncio.sleep(0.2 * failures)
                continue
            for _name, entries in batches or []:
                for stream_id, fields in entries:
                    position = stream_id
                    if not watch.shows(fields) or fields["id"] in seen:
                        continue
                    seen[fields["id"]] = None
                    if len(seen) > _SEEN:
                        seen.popitem(last=False)
                    try:
                        queue.put_nowait(message(stream_id, fields))
                    except asyncio.QueueFull:
                        return Closed(
                            CLOSE_SLOW_CONSUMER,
                            "client too slow; resume from last id",
                            "slow_consumer",
                        )

    async def write() -> Closed:
        while True:
            await send_text(await queue.get())
            delivered.set()

    async def idle() -> Closed:
        while True:
            delivered.clear()
            try:
                await asyncio.wait_for(delivered.wait(), idle_timeout_seconds)
            except TimeoutError:
                return Closed(CLOSE_IDLE, "idle", "idle")

    async def away() -> Closed:
        await going_away.wait()
        return Closed(CLOSE_GOING_AWAY, "server shutting down; reconnect", "going_away")

    async def gone() -> Closed:
        await disconnected()
        return Closed(CLOSE_CLIENT_LEFT, "", "client")

    tasks = [asyncio.create_task(part()) for part in (read, write, idle, away, gone)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class ConnectionSlots:
    """At most ``limit`` WebSockets per caller across every process and replica: a Redis
    sorted set per caller (``orders:events:connections:{subject}``) of connection ids scored
    by when their claim lapses. Live connections renew their claim; a crashed process's
    claims lapse by themselves."""

    def __init__(self, redis: Redis, *, limit: int, lease_seconds: float) -> None:
        self.redis = redis
        self.limit = limit
        self.lease_seconds = lease_seconds

    @staticmethod
    def _key(viewer: Identity) -> str:
        return f"orders:events:connections:{{{viewer.subject}}}"

    async def claim(self, viewer: Identity, connection: str) -> bool:
        key = self._key(viewer)
        now = await self._now()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            _, held = await pipe.execute()
        if held >= self.limit:
            return False
        await self._renew(key, connection, now)
        return True

    async def keep(self, viewer: Identity, connection: str) -> None:
        """Renew the claim every third of its lease, until cancelled."""
        key = self._key(viewer)
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(RedisError):
                await self._renew(key, connection, await self._now())

    async def release(self, viewer: Identity, connection: str) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.zrem(self._key(viewer), connection)

    async def _renew(self, key: str, connection: str, now: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {connection: now + self.lease_seconds})
            pipe.expire(key, max(1, int(self.lease_seconds * 2)))
            await pipe.execute()

    async def _now(self) -> float:
        # Redis' clock, so that replicas whose clocks differ agree on what has lapsed.
        seconds, micros = await self.redis.time()
        return float(seconds) + micros / 1e6
