"""events/relay.py under faults, each relay its own ``shopstack-orders relay`` process:
killed between XADD and marking, Redis down while orders are placed, two relays at once.
Each ends with every event delivered exactly once after dropping duplicates by id, in
order for every order and product."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import psycopg
import redis

from ..conftest import ADMIN, ALICE
from .conftest import (
    STREAM,
    OwnRedis,
    Relays,
    RelayStarter,
    delivered_once_in_order,
    outbox_rows,
    stream_entries,
    wait_for,
)

if TYPE_CHECKING:
    from services.orders.tests.conftest import ClientFactory, OrderPlacer, ProductFactory


async def place_and_move(
    client: httpx.AsyncClient, place: OrderPlacer, product: dict[str, object], count: int
) -> None:
    """``count`` orders by Alice: every third cancelled, the others paid and shipped."""
    buyer, admin = ALICE.to_headers(), ADMIN.to_headers()
    for number in range(count):
        placed = await place(buyer, (product, 1), via=client)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        if number % 3 == 0:
            moved = await client.post(f"/api/v1/orders/{order_id}/cancel", headers=buyer)
        else:
            for target in ("paid", "shipped"):
                moved = await client.post(
                    f"/api/v1/orders/{order_id}/transitions", json={"to": target}, headers=admin
                )
                assert moved.status_code == 200, moved.text
        assert moved.status_code == 200, moved.text


def all_published(database_url: str) -> bool:
    rows = outbox_rows(database_url)
    return bool(rows) and all(row["published_at"] is not None for row in rows)


async def test_a_relay_killed_between_xadd_and_marking_delivers_a_duplicate_deduped_by_id(
    make_client: ClientFactory,
    make_product: ProductFactory,
    place: OrderPlacer,
    relays: Relays,
) -> None:
    own_redis, start_relay, database_url = relays.redis, relays.start, relays.database_url
    tea = await make_product(stock=100)
    async with make_client(redis_url=own_redis.url) as client:
        await place_and_move(client, place, tea, 6)
    written = len(outbox_rows(database_url))

    # A SHARE lock lets the relay claim its rows (FOR UPDATE) and add them to the stream,
    # but not mark them (UPDATE): it is stuck between the two when it is killed.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE orders.outbox_events IN SHARE MODE")
        first = start_relay(redis_url=own_redis.url)
        wait_for(lambda: len(stream_entries(own_redis.url)) == written, "the first XADD")
        first.kill()
        blocker.rollback()
    assert not any(row["published_at"] for row in outbox_rows(database_url))

    second = start_relay(redis_url=own_redis.url)
    wait_for(lambda: all_published(database_url), "the second relay to publish")
    assert second.stop() == 0

    delivery = delivered_once_in_order(database_url, own_redis.url)
    assert delivery.duplicates == written  # the whole first batch, added again
    assert len(delivery.events) == written


async def test_orders_placed_while_redis_is_down_are_published_when_it_is_back(
    make_client: ClientFactory,
    make_product: ProductFactory,
    place: OrderPlacer,
    relays: Relays,
) -> None:
    own_redis, start_relay, database_url = relays.redis, relays.start, relays.database_url
    tea = await make_product(stock=100)
    relay = start_relay(redis_url=own_redis.url)
    async with make_client(redis_url=own_redis.url) as client:
        await place_and_move(client, place, tea, 3)
        wait_for(lambda: all_published(database_url), "the events before the outage")

        own_redis.stop()
        await place_and_move(client, place, tea, 6)
        waiting = [row for row in outbox_rows(database_url) if row["published_at"] is None]
        # Each order placed + its stock; 4 paid and shipped; 2 cancelled + their stock back.
        assert len(waiting) == 6 * 2 + 4 * 2 + 2 * 2
        wait_for(
            lambda: (relay.metric("shopstack_orders_relay_errors_total") or 0) > 0,
            "the relay to notice Redis is down",
        )
        assert all(
            row["published_at"] is None for row in outbox_rows(database_url)[-len(waiting) :]
        )

        own_redis.start()
        wait_for(lambda: all_published(database_url), "the queued events after Redis is back")
    assert relay.stop() == 0
    delivery = delivered_once_in_order(database_url, own_redis.url)
    assert len(delivery.events) == len(outbox_rows(database_url))


async def test_two_relays_at_once_publish_each_event_once_and_the_standby_takes_over(
    make_client: ClientFactory,
    make_product: ProductFactory,
    place: OrderPlacer,
    relays: Relays,
) -> None:
    own_redis, start_relay, database_url = relays.redis, relays.start, relays.database_url
    tea = await make_product(stock=100)
    relays = [start_relay(redis_url=own_redis.url) for _ in range(2)]
    wait_for(lambda: sum(relay.is_leader() for relay in relays) == 1, "one leader")
    async with make_client(redis_url=own_redis.url) as client:
        await place_and_move(client, place, tea, 9)
        wait_for(lambda: all_published(database_url), "the leader to publish")
        assert sum(relay.is_leader() for relay in relays) == 1
        # With the lease, the second relay never published anything: no duplicate at all.
        assert delivered_once_in_order(database_url, own_redis.url).duplicates == 0

        leader = next(relay for relay in relays if relay.is_leader())
        standby = next(relay for relay in relays if relay is not leader)
        leader.kill()  # its connection closes, and the advisory lock with it
        await place_and_move(client, place, tea, 3)
        wait_for(standby.is_leader, "the standby to take the lease")
        wait_for(lambda: all_published(database_url), "the new leader to publish")
    assert standby.stop() == 0
    delivery = delivered_once_in_order(database_url, own_redis.url)
    assert len(delivery.events) == len(outbox_rows(database_url))
    assert delivery.duplicates == 0


def test_the_stream_is_trimmed_and_published_rows_are_purged(
    own_redis: OwnRedis, start_relay: RelayStarter, database_url: str
) -> None:
    with psycopg.connect(database_url) as connection:
        connection.execute(
            "INSERT INTO orders.outbox_events "
            "(id, type, subject, subject_id, version, payload, occurred_at, published_at) "
            "SELECT gen_random_uuid(), 'stock.changed', 'product', gen_random_uuid(), 1, '{}', "
            "now(), CASE WHEN n <= 3000 THEN now() - interval '2 hours' END "
            "FROM generate_series(1, 5000) AS n"
        )
    relay = start_relay(
        redis_url=own_redis.url,
        EVENTS_STREAM_MAXLEN="1000",
        OUTBOX_RETENTION_HOURS="1",
        OUTBOX_PURGE_BATCH_SIZE="500",
    )
    wait_for(lambda: all_published(database_url), "the relay to publish")
    wait_for(lambda: len(outbox_rows(database_url)) == 2000, "the purge")
    assert relay.stop() == 0
    client = redis.Redis.from_url(own_redis.url)
    try:
        length = client.xlen(STREAM)
    finally:
        client.close()
    # MAXLEN ~ trims whole nodes: about 1000 entries, never all 2000 added.
    assert 1000 <= length < 2000
