"""events/live.py on a real Redis stream: what a connection sends, its resume point, the
duplicates it drops, and the slow client it gives up on."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shopstack_orders.events.live import (
    CLOSE_GOING_AWAY,
    CLOSE_SLOW_CONSUMER,
    Closed,
    Watch,
    stream_events,
)

from ..conftest import ADMIN, ALICE, BOB
from .conftest import STREAM


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def publish(redis: Redis, user: uuid.UUID | None, event_id: str | None = None) -> str:
    stream_id: str = await redis.xadd(
        STREAM,
        {
            "id": event_id or str(uuid.uuid4()),
            "type": "order.placed" if user else "stock.changed",
            "subject": "order" if user else "product",
            "subject_id": str(uuid.uuid4()),
            "version": "1",
            "user_id": str(user) if user else "",
            "occurred_at": "2026-12-02T00:00:00+00:00",
            "payload": json.dumps({"n": 1}),
        },
    )
    return stream_id


class Client:
    """The connection's far end: what it was sent, and a way to stop reading."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.left = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.reading.wait()
        self.sent.append(json.loads(text))

    async def disconnected(self) -> None:
        await self.left.wait()


def run(
    redis: Redis, watch: Watch, client: Client, *, last_id: str | None, stop: asyncio.Event
) -> asyncio.Task[Closed]:
    return asyncio.create_task(
        stream_events(
            redis=redis,
            stream=STREAM,
            watch=watch,
            last_id=last_id,
            queue_size=8,
            block_ms=100,
            idle_timeout_seconds=60,
            send_text=client.send_text,
            disconnected=client.disconnected,
            going_away=stop,
        )
    )


async def until(condition: object, what: str) -> None:
    for _ in range(200):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


async def test_a_customer_gets_her_events_from_the_resume_point_without_duplicates(
    redis: Redis,
) -> None:
    assert ALICE.user_id is not None
    assert BOB.user_id is not None
    before = await publish(redis, ALICE.user_id)
    duplicate = str(uuid.uuid4())
    after = [await publish(redis, ALICE.user_id, duplicate)]
    await publish(redis, BOB.user_id)
    await publish(redis, None)  # stock: administrators only
    after.append(await publish(redis, ALICE.user_id, duplicate))  # the relay's redelivery
    after.append(await publish(redis, ALICE.user_id))
    client, stop = Client(), asyncio.Event()
    task = run(redis, Watch(ALICE, None), client, last_id=before, stop=stop)
    await until(lambda: len(client.sent) >= 2, "two events")
    stop.set()
    closed = await task
    assert closed.code == CLOSE_GOING_AWAY
    assert [m["stream_id"] for m in client.sent] == [after[0], after[2]]


async def test_an_administrator_sees_every_event(redis: Redis) -> None:
    start = await publish(redis, None)
    for user in (ALICE.user_id, BOB.user_id, None):
        await publish(redis, user)
    client, stop = Client(), asyncio.Event()
    task = run(redis, Watch(ADMIN, None), client, last_id=start, stop=stop)
    await until(lambda: len(client.sent) == 3, "three events")
    stop.set()
    await task


async def test_a_client_that_stops_reading_is_closed_with_4001_not_buffered(
    redis: Redis,
) -> None:
    client, stop = Client(), asyncio.Event()
    client.reading.clear()
    start = await publish(redis, None)
    task = run(redis, Watch(ADMIN, None), client, last_id=start, stop=stop)
    for _ in range(100):
        await publish(redis, None)
    closed = await asyncio.wait_for(task, 30)
    assert closed.code == CLOSE_SLOW_CONSUMER
    assert client.sent == []
