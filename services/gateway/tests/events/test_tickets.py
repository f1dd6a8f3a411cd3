"""events/tickets.py on a real Redis: a ticket opens once, for the identity it was issued
to, and not after its lifetime; Redis down is an error of its own, not a refusal."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shopstack_common.identity import Identity
from shopstack_devstack.ports import free_port
from shopstack_gateway.events.tickets import KEY_PREFIX, TicketStore, TicketsUnavailableError

ADA = Identity(user_id=uuid.uuid4(), client_id="web", roles=frozenset({"customer"}))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_ticket_opens_once_for_its_identity(redis: Redis) -> None:
    store = TicketStore(redis, ttl_seconds=30)
    ticket = await store.issue(ADA)
    # Only the ticket's hash is stored: reading Redis does not hand out tickets.
    keys = [key.decode() async for key in redis.scan_iter(f"{KEY_PREFIX}*")]
    assert len(keys) == 1
    assert ticket not in keys[0]
    assert await store.redeem(ticket) == ADA
    assert await store.redeem(ticket) is None


async def test_an_unknown_or_expired_ticket_opens_nothing(redis: Redis) -> None:
    store = TicketStore(redis, ttl_seconds=0.001)
    ticket = await store.issue(ADA)
    await asyncio.sleep(0.1)  # past its 1 ms lifetime; Redis expires it
    assert await store.redeem(ticket) is None
    assert await store.redeem("made-up") is None


async def test_redis_down_is_unavailable_not_a_refusal() -> None:
    dead = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    store = TicketStore(dead, ttl_seconds=30)
    try:
        with pytest.raises(TicketsUnavailableError):
            await store.issue(ADA)
        with pytest.raises(TicketsUnavailableError):
            await store.redeem("any")
    finally:
        await dead.aclose()
