"""Idempotency-Key on order creation and cancellation (IETF httpapi idempotency-key draft)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shopstack_common.settings import sqlalchemy_url
from shopstack_orders.idempotency.service import (
    IdempotencyPolicy,
    fingerprint,
    idempotent_request,
    run,
)

if TYPE_CHECKING:
    from services.orders.tests.conftest import (
        ClientFactory,
        MetricReader,
        OrderPlacer,
        ProductFactory,
    )

ORDERS = "/api/v1/orders"
REPLAYED = "idempotent-replayed"


def count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM orders.{table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


async def stock_of(client: httpx.AsyncClient, product: dict[str, Any]) -> int:
    stock: int = (await client.get(f"/api/v1/products/{product['id']}")).json()["stock"]
    return stock


@asynccontextmanager
async def product_locked(database_url: str, product: dict[str, Any]) -> AsyncIterator[None]:
    """Hold the product's row lock, so an order for it stays in flight until we let go."""
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute(
            "SELECT 1 FROM orders.products WHERE id = %s FOR UPDATE", (product["id"],)
        )
        yield
        await holder.rollback()


async def backends_waiting_for_a_lock(database_url: str, at_least: int) -> list[int]:
    deadline = time.monotonic() + 10
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as watcher:
        while True:
            cursor = await watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            pids = [row[0] for row in await cursor.fetchall()]
            if len(pids) >= at_least:
                return pids
            assert time.monotonic() < deadline, "the request never waited for the lock"
            await asyncio.sleep(0.02)


async def test_same_key_and_payload_replays_the_first_response(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    database_url: str,
    metric: MetricReader,
) -> None:
    tea = await make_product(stock=10)
    replays_before = await metric(
        "shopstack_orders_idempotent_replays_total", operation="place_order"
    )
    first = await place(alice, (tea, 2), key="order-1")
    again = await place(alice, (tea, 2), key="order-1")
    assert first.status_code == again.status_code == 201
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert count(database_url, "orders") == 1
    assert await stock_of(client, tea) == 8
    replays_after = await metric(
        "shopstack_orders_idempotent_replays_total", operation="place_order"
    )
    assert replays_after == replays_before + 1


async def test_the_replay_is_the_first_response_even_after_the_order_moved_on(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product(stock=10)
    first = await place(alice, (tea, 1), key="k")
    await client.post(f"{ORDERS}/{first.json()['id']}/cancel", headers=alice)
    again = await place(alice, (tea, 1), key="k")
    assert again.json() == first.json()
    assert again.json()["status"] == "pending"


async def test_the_payload_is_compared_by_meaning_not_bytes(
    client: httpx.AsyncClient, make_product: ProductFactory, alice: dict[str, str]
) -> None:
    tea = await make_product()
    headers = alice | {"Idempotency-Key": "k", "content-type": "application/json"}
    first = await client.post(
        ORDERS,
        content=f'{{"items": [{{"product_id": "{tea["id"]}", "quantity": 1}}]}}',
        headers=headers,
    )
    reordered = await client.post(
        ORDERS,
        content=f'{{"items":[{{"quantity":1,"product_id":"{tea["id"]}"}}],"note":null}}',
        headers=headers,
    )
    assert first.status_code == 201
    assert reordered.headers[REPLAYED] == "true"


async def test_same_key_with_another_payload_is_422(
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    database_url: str,
    metric: MetricReader,
) -> None:
    tea = await make_product()
    assert (await place(alice, (tea, 1), key="k")).status_code == 201
    refused_before = await metric(
        "shopstack_orders_idempotency_conflicts_total", reason="payload_mismatch"
    )
    for different in (
        await place(alice, (tea, 2), key="k"),
        await place(alice, (tea, 1), key="k", note="now with a note"),
    ):
        assert different.status_code == 422
        assert different.headers["content-type"] == "application/problem+json"
        assert different.json()["errors"] == [
            {
                "field": "Idempotency-Key",
                "location": "header",
                "message": "already used with a different payload",
            }
        ]
        assert different.json()["detail"] == (
            "This Idempotency-Key was used for a different request; use a new key."
        )
    assert count(database_url, "orders") == 1
    refused_after = await metric(
        "shopstack_orders_idempotency_conflicts_total", reason="payload_mismatch"
    )
    assert refused_after == refused_before + 2


async def test_a_key_used_to_place_an_order_cannot_cancel_one(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    order = (await place(alice, (await make_product(), 1), key="k")).json()
    response = await client.post(
        f"{ORDERS}/{order['id']}/cancel", headers=alice | {"Idempotency-Key": "k"}
    )
    assert response.status_code == 422
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=alice)).json()["status"] == (
        "pending"
    )


async def test_keys_are_scoped_to_the_caller(
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    bob: dict[str, str],
    database_url: str,
) -> None:
    tea = await make_product(stock=10)
    mine = await place(alice, (tea, 1), key="shared")
    theirs = await place(bob, (tea, 1), key="shared")
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["user_id"] == bob["X-Shopstack-User-Id"]
    # Each caller's repeat finds its own record, though both records have the key.
    for headers, original in ((bob, theirs), (alice, mine)):
        again = await place(headers, (tea, 1), key="shared")
        assert again.headers[REPLAYED] == "true"
        assert again.json() == original.json()
    assert count(database_url, "orders") == 2


async def test_each_key_of_a_caller_replays_its_own_response(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str]
) -> None:
    tea = await make_product(stock=10)
    first = await place(alice, (tea, 1), key="first")
    second = await place(alice, (tea, 2), key="second")
    for key, original in (("second", second), ("first", first)):
        again = await place(alice, (tea, original.json()["items"][0]["quantity"]), key=key)
        assert again.headers[REPLAYED] == "true"
        assert again.json() == original.json()


async def test_a_retry_while_the_first_is_in_flight_is_409(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    database_url: str,
) -> None:
    tea = await make_product(stock=10)
    async with product_locked(database_url, tea):
        first = asyncio.create_task(place(alice, (tea, 1), key="slow"))
        await backends_waiting_for_a_lock(database_url, at_least=1)
        retry = await place(alice, (tea, 1), key="slow")
        assert retry.status_code == 409
        assert retry.headers["content-type"] == "application/problem+json"
        assert retry.headers["retry-after"] == "1"
        assert retry.json()["type"].endswith("/idempotency-key-in-flight")
        # The first is still waiting for the product, its key claimed but not committed.
        assert not first.done()
    done = await first
    assert done.status_code == 201
    replay = await place(alice, (tea, 1), key="slow")
    assert replay.headers[REPLAYED] == "true"
    assert replay.json() == done.json()
    assert await stock_of(client, tea) == 9


async def test_a_committed_record_still_in_flight_is_not_replayed(
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    database_url: str,
    metric: MetricReader,
) -> None:
    """A record committed before its response (by a process that commits in stages) is in
    flight, not a response: the repeat is told to retry, and nothing is placed."""
    tea = await make_product(stock=10)
    with psycopg.connect(database_url) as connection:
        connection.execute(
            "INSERT INTO orders.idempotency_keys (caller, key, fingerprint, status, created_at,"
            " expires_at) VALUES (%s, 'staged', 'unknown', 'in_flight', now(),"
            " now() + interval '1 day')",
            (alice["X-Shopstack-User-Id"],),
        )
    in_flight_before = await metric(
        "shopstack_orders_idempotency_conflicts_total", reason="in_flight"
    )
    retry = await place(alice, (tea, 1), key="staged")
    assert retry.status_code == 409
    assert retry.json()["detail"] == (
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )
    assert retry.headers["retry-after"] == "1"
    in_flight_after = await metric(
        "shopstack_orders_idempotency_conflicts_total", reason="in_flight"
    )
    assert in_flight_after == in_flight_before + 1
    assert count(database_url, "orders") == 0


async def test_a_crash_mid_request_leaves_neither_order_nor_key(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str], database_url: str
) -> None:
    tea = await make_product(stock=10)
    async with product_locked(database_url, tea):
        first = asyncio.create_task(place(alice, (tea, 1), key="doomed"))
        [pid] = await backends_waiting_for_a_lock(database_url, at_least=1)
        # The connection dies with the key claimed but the order not yet written.
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        crashed = await first
    assert crashed.status_code == 503
    assert crashed.headers["content-type"] == "application/problem+json"
    assert count(database_url, "orders") == 0
    assert count(database_url, "idempotency_keys") == 0
    retried = await place(alice, (tea, 1), key="doomed")
    assert retried.status_code == 201
    assert REPLAYED not in retried.headers


async def test_a_failed_request_does_not_use_up_its_key(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
) -> None:
    tea = await make_product(stock=1)
    assert (await place(alice, (tea, 3), key="k")).status_code == 409
    await client.post(f"/api/v1/products/{tea['id']}/restock", json={"quantity": 5}, headers=admin)
    retried = await place(alice, (tea, 3), key="k")
    assert retried.status_code == 201
    assert REPLAYED not in retried.headers


async def test_without_a_key_every_request_acts(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str], database_url: str
) -> None:
    tea = await make_product(stock=10)
    assert (await place(alice, (tea, 1))).status_code == 201
    assert (await place(alice, (tea, 1))).status_code == 201
    assert count(database_url, "orders") == 2
    assert count(database_url, "idempotency_keys") == 0


async def test_a_quoted_key_is_the_same_key(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str]
) -> None:
    tea = await make_product()
    first = await place(alice, (tea, 1), key='"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    again = await place(alice, (tea, 1), key="8e03978e-40d5-43e8-bc93-6894a57f9324")
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", '"unterminated', "naïve"])
async def test_a_malformed_key_is_422_naming_the_header(
    client: httpx.AsyncClient, make_product: ProductFactory, alice: dict[str, str], key: str
) -> None:
    tea = await make_product()
    response = await client.post(
        ORDERS,
        json={"items": [{"product_id": tea["id"], "quantity": 1}]},
        headers=[(k.encode(), v.encode()) for k, v in alice.items()]
        + [(b"Idempotency-Key", key.encode())],
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]


async def test_cancel_with_a_key_replays_and_returns_the_stock_once(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    database_url: str,
    metric: MetricReader,
) -> None:
    tea = await make_product(stock=10)
    order = (await place(alice, (tea, 4))).json()
    headers = alice | {"Idempotency-Key": "cancel-1"}
    replays = "shopstack_orders_idempotent_replays_total"
    replays_before = await metric(replays, operation="cancel_order")
    first = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=headers)
    again = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers[REPLAYED] == "true"
    assert await metric(replays, operation="cancel_order") == replays_before + 1
    # The record's fingerprint is the cancel's operation and order, as every release digests
    # them: a retry that reaches another release still matches.
    with psycopg.connect(database_url) as connection:
        stored = connection.execute(
            "SELECT fingerprint FROM orders.idempotency_keys WHERE key = 'cancel-1'"
        ).fetchone()
    assert stored == (
        fingerprint(operation="cancel_order", payload={"order_id": order["id"], "to": "cancelled"}),
    )
    assert again.json() == first.json()
    assert await stock_of(client, tea) == 10
    # Without the key, the repeat is what it is: an illegal change.
    bare = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=alice)
    assert bare.status_code == 409
    # The same key for another order's cancellation is another payload.
    other = (await place(alice, (tea, 1))).json()
    reused = await client.post(f"{ORDERS}/{other['id']}/cancel", headers=headers)
    assert reused.status_code == 422
    assert count(database_url, "idempotency_keys") == 1


async def test_every_key_record_has_its_committed_order(
    client: httpx.AsyncClient, make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    tea = await make_product(stock=30)
    buyers = [
        {"X-Shopstack-User-Id": str(uuid.uuid4()), "X-Shopstack-Roles": "customer"}
        for _ in range(40)
    ]
    # Twice the same key per buyer, at once: one order each, whatever interleaving happens.
    responses = await asyncio.gather(
        *(place(buyer, (tea, 1), key="once") for buyer in buyers for _ in range(2))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    with psycopg.connect(database_url) as connection:
        orphans = connection.execute(
            "SELECT count(*) FROM orders.idempotency_keys k LEFT JOIN orders.orders o "
            "ON o.id = k.resource_id WHERE o.id IS NULL OR k.status <> 'completed'"
        ).fetchone()
        per_buyer = connection.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM orders.orders GROUP BY user_id) c"
        ).fetchone()
    assert orphans == (0,)
    assert per_buyer == (1,)
    assert count(database_url, "orders") == count(database_url, "idempotency_keys") == 30


def expire_keys(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE orders.idempotency_keys SET created_at = created_at - interval '25 hours', "
            "expires_at = expires_at - interval '25 hours'"
        )


async def test_keys_are_kept_at_least_24_hours(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str], database_url: str
) -> None:
    await place(alice, (await make_product(), 1), key="k")
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT expires_at - created_at FROM orders.idempotency_keys"
        ).fetchone()
    assert row is not None
    assert row[0].total_seconds() >= 24 * 3600


async def test_an_expired_key_is_a_new_key(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str], database_url: str
) -> None:
    tea = await make_product(stock=10)
    first = await place(alice, (tea, 1), key="k")
    expire_keys(database_url)
    again = await place(alice, (tea, 1), key="k")
    assert again.status_code == 201
    assert REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert count(database_url, "idempotency_keys") == 1


def test_the_purge_command_deletes_only_expired_keys(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopstack_orders.cli import main

    with psycopg.connect(database_url, autocommit=True) as connection:
        for key, age in (("old-1", "30 hours"), ("old-2", "25 hours"), ("fresh", "1 hour")):
            connection.execute(
                "INSERT INTO orders.idempotency_keys (caller, key, fingerprint, status, "
                "response_status, response_body, created_at, expires_at) VALUES "
                "('someone', %s, 'f', 'completed', 201, '{}', now() - %s::interval, "
                "now() - %s::interval + interval '24 hours')",
                (key, age, age),
            )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("IDEMPOTENCY_PURGE_BATCH_SIZE", "1")  # several batches
    main(["purge-idempotency-keys"])
    with psycopg.connect(database_url) as connection:
        left = connection.execute("SELECT key FROM orders.idempotency_keys").fetchall()
    assert left == [("fresh",)]


async def test_every_process_purges_on_a_schedule(
    make_client: ClientFactory,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    database_url: str,
) -> None:
    await place(alice, (await make_product(), 1), key="k")
    expire_keys(database_url)
    async with make_client(idempotency_purge_interval_seconds=0.05):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if count(database_url, "idempotency_keys") == 0:
                break
            await asyncio.sleep(0.05)
    assert count(database_url, "idempotency_keys") == 0
    assert count(database_url, "orders") == 1  # the order itself stays


class Setting(BaseModel):
    id: None = None
    value: str


@pytest.mark.parametrize("configured", [None, "3s"])
async def test_the_claims_short_lock_timeout_ends_with_the_claim(
    database_url: str, configured: str | None
) -> None:
    """Product rows locked after the claim must wait as the server is configured to, not for
    the claim's 100 ms."""
    server_settings = {"lock_timeout": configured} if configured else {}
    engine = create_async_engine(
        sqlalchemy_url(database_url, "asyncpg"), connect_args={"server_settings": server_settings}
    )
    policy = IdempotencyPolicy(retention=timedelta(hours=24), lock_timeout_ms=100)
    try:
        async with AsyncSession(engine) as session:
            expected = await session.scalar(text("SHOW lock_timeout"))
            await session.rollback()

            async def read_setting() -> Setting:
                return Setting(value=str(await session.scalar(text("SHOW lock_timeout"))))

            outcome = await run(
                session=session,
                request=idempotent_request(caller="c", key="k", operation="op", payload={}),
                policy=policy,
                status_code=200,
                action=read_setting,
            )
    finally:
        await engine.dispose()
    assert outcome.result is not None
    assert outcome.result.value == expected == (configured or "0")


FIXED_PAYLOAD = {
    "note": "ünïcode",
    "items": [{"quantity": 2, "product_id": uuid.UUID("00000000-0000-4000-8000-000000000001")}],
}


def test_the_fingerprint_of_a_request_does_not_change_between_releases() -> None:
    """Key records outlive a deploy: a retry that reaches the next release must match the
    fingerprint the previous one stored. The digest of a fixed request is pinned here; a
    change to the canonical form (key order, separators, how a UUID is written, the fields
    digested) shows as a different digest."""
    request = idempotent_request(
        caller="someone", key="k", operation="place_order", payload=FIXED_PAYLOAD
    )
    assert request is not None
    assert request.fingerprint == (
        "9894233b1a4d865df4f60cd214e587ab479a5eb90e701547c0644a149cacff41"
    )
    reordered = {"items": [{"product_id": "00000000-0000-4000-8000-000000000001", "quantity": 2}]}
    assert (
        fingerprint(operation="place_order", payload=reordered | {"note": "ünïcode"})
        == request.fingerprint
    )
    assert fingerprint(operation="cancel_order", payload=FIXED_PAYLOAD) != request.fingerprint


async def test_the_claim_leaves_the_connections_own_lock_timeout_as_it_was(
    database_url: str,
) -> None:
    """Both of the claim's settings are local to its transaction: a connection with a
    ``lock_timeout`` of its own (a ``SET`` for the session) has it again after a claim and
    after a replay, as it goes back to the pool."""
    engine = create_async_engine(
        sqlalchemy_url(database_url, "asyncpg"), pool_size=1, max_overflow=0
    )
    policy = IdempotencyPolicy(retention=timedelta(hours=24), lock_timeout_ms=100)
    request = idempotent_request(caller="c", key="k", operation="op", payload={})

    async def answer() -> Setting:
        return Setting(value="done")

    seen = []
    try:
        async with AsyncSession(engine) as session:
            await session.execute(text("SET lock_timeout = '7s'"))
            await session.commit()
            for _ in ("claim", "replay"):
                await run(
                    session=session,
                    request=request,
                    policy=policy,
                    status_code=200,
                    action=answer,
                )
                seen.append(await session.scalar(text("SHOW lock_timeout")))
                await session.rollback()
    finally:
        await engine.dispose()
    assert seen == ["7s", "7s"]
