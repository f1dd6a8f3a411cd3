"""catalog.stock under concurrency: never oversold, never deadlocked, returned once. Real
PostgreSQL, real races."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from shopstack_common.identity import Identity

if TYPE_CHECKING:
    from services.orders.tests.conftest import ClientFactory, OrderPlacer, ProductFactory


def customer() -> dict[str, str]:
    return Identity(user_id=uuid.uuid4(), roles=frozenset({"customer"})).to_headers()


def sold_per_product(database_url: str) -> dict[str, int]:
    """Units held by orders that are not cancelled, straight from the database."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT i.product_id::text, sum(i.quantity) FROM orders.order_items i "
            "JOIN orders.orders o ON o.id = i.order_id WHERE o.status <> 'cancelled' "
            "GROUP BY i.product_id"
        ).fetchall()
    return {product_id: int(total) for product_id, total in rows}


def stock_in_db(database_url: str, product: dict[str, Any]) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT stock FROM orders.products WHERE id = %s", (product["id"],)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_200_concurrent_orders_for_50_units_sell_exactly_50(
    make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    hot = await make_product(stock=50)
    responses = await asyncio.gather(*(place(customer(), (hot, 1)) for _ in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 150}, statuses
    assert stock_in_db(database_url, hot) == 0
    assert sold_per_product(database_url) == {hot["id"]: 50}
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["unavailable"][0]["available"] == 0


async def test_concurrent_multi_item_orders_in_opposite_order_do_not_deadlock(
    make_product: ProductFactory, place: OrderPlacer, make_client: ClientFactory, database_url: str
) -> None:
    products = [await make_product(stock=120) for _ in range(3)]
    # Every permutation of three products, many times over: with locks taken in line order,
    # these would wait on each other in cycles and PostgreSQL would abort some as deadlocked.
    orders = [list(p) for p in itertools.permutations(products)] * 20
    # 120 orders queue for 20 connections and three rows. The pool and statement timeouts
    # are a minute here, so a slow machine makes the queue longer, not a 503; a deadlock is
    # still aborted by PostgreSQL within its deadlock_timeout and fails the test.
    patient = {"db_pool_timeout_seconds": 60.0, "db_statement_timeout_ms": 60_000}
    async with make_client(**patient) as via:
        responses = await asyncio.gather(
            *(place(customer(), *((p, 1) for p in lines), via=via) for lines in orders)
        )
    assert Counter(r.status_code for r in responses) == {201: 120}
    assert [stock_in_db(database_url, p) for p in products] == [0, 0, 0]


async def test_an_order_takes_its_products_in_id_order_whatever_its_lines_order(
    make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    """The test above, without the race: the order's lines name the higher id first, and
    another transaction holds that product's row. The order must wait for it already holding
    the lower one, which it took first."""
    low, high = sorted([await make_product(stock=5), await make_product(stock=5)], key=by_id)
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await lock_product(holder, high)
        pending = asyncio.create_task(place(customer(), (high, 1), (low, 2)))
        await wait_for_lock_waiter(database_url)
        assert await is_locked(database_url, low)
        await holder.rollback()
    assert (await pending).status_code == 201
    assert [stock_in_db(database_url, p) for p in (low, high)] == [3, 4]


async def test_a_cancel_returns_its_products_in_id_order_whatever_its_lines_order(
    client: httpx.AsyncClient, make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    """Cancelling gives the stock back in the same order as an order takes it, so a cancel
    and an order over the same products queue instead of waiting in a cycle."""
    low, high = sorted([await make_product(stock=5), await make_product(stock=5)], key=by_id)
    buyer = customer()
    order = (await place(buyer, (high, 1), (low, 2))).json()
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await lock_product(holder, high)
        pending = asyncio.create_task(
            client.post(f"/api/v1/orders/{order['id']}/cancel", headers=buyer)
        )
        await wait_for_lock_waiter(database_url)
        assert await is_locked(database_url, low)
        await holder.rollback()
    assert (await pending).status_code == 200
    assert [stock_in_db(database_url, p) for p in (low, high)] == [5, 5]


def by_id(product: dict[str, Any]) -> str:
    # PostgreSQL orders uuids by their bytes, as their hex text sorts.
    return str(product["id"])


async def lock_product(
    connection: psycopg.AsyncConnection[Any], product: dict[str, Any], *, wait: bool = True
) -> None:
    # The lock a stock UPDATE takes: FOR UPDATE would also hold back the order's foreign key
    # checks (FOR KEY SHARE), before it reaches the stock.
    lock = "FOR NO KEY UPDATE" if wait else "FOR NO KEY UPDATE NOWAIT"
    await connection.execute(
        f"SELECT 1 FROM orders.products WHERE id = %s {lock}",  # noqa: S608 (one of two literals)
        (product["id"],),
    )


async def is_locked(database_url: str, product: dict[str, Any]) -> bool:
    """Whether another transaction holds the product's row lock now (asks without waiting)."""
    async with await psycopg.AsyncConnection.connect(database_url) as probe:
        try:
            await lock_product(probe, product, wait=False)
        except psycopg.errors.LockNotAvailable:
            return True
        return False


async def test_mixed_concurrent_orders_never_oversell_any_product(
    make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    initial = {"a": 30, "b": 20, "c": 5}
    products = {name: await make_product(stock=stock) for name, stock in initial.items()}
    rng = random.Random(4)  # a fixed mix, so a failure can be replayed
    baskets = [
        [(products[n], rng.randint(1, 3)) for n in rng.sample(sorted(products), rng.randint(1, 3))]
        for _ in range(120)
    ]
    responses = await asyncio.gather(*(place(customer(), *basket) for basket in baskets))
    assert {r.status_code for r in responses} <= {201, 409}
    sold = sold_per_product(database_url)
    accepted = Counter[str]()
    for basket, response in zip(baskets, responses, strict=True):
        if response.status_code == 201:
            for product, quantity in basket:
                accepted[product["id"]] += quantity
    for name, product in products.items():
        left = stock_in_db(database_url, product)
        assert left >= 0
        assert sold.get(product["id"], 0) == accepted[product["id"]] == initial[name] - left


async def test_concurrent_cancels_return_the_stock_once(
    client: httpx.AsyncClient, make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    tea = await make_product(stock=10)
    buyer = customer()
    order = (await place(buyer, (tea, 4))).json()
    responses = await asyncio.gather(
        *(client.post(f"/api/v1/orders/{order['id']}/cancel", headers=buyer) for _ in range(10))
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
    assert stock_in_db(database_url, tea) == 10


async def test_the_database_refuses_negative_stock(
    make_product: ProductFactory, database_url: str
) -> None:
    tea = await make_product(stock=1)
    with psycopg.connect(database_url) as connection, pytest.raises(psycopg.errors.CheckViolation):
        connection.execute("UPDATE orders.products SET stock = -1 WHERE id = %s", (tea["id"],))


async def test_stock_is_checked_again_under_the_row_lock(
    client: httpx.AsyncClient, make_product: ProductFactory, place: OrderPlacer, database_url: str
) -> None:
    """The order passes the first look at the stock; another transaction takes most of it
    before the order's UPDATE gets the row lock; the order must then be refused."""
    plenty = await make_product(stock=5)
    scarce = await make_product(stock=3)
    async with await psycopg.AsyncConnection.connect(database_url) as other:
        await other.execute(
            "SELECT 1 FROM orders.products WHERE id = %s FOR UPDATE", (scarce["id"],)
        )
        pending = asyncio.create_task(place(customer(), (plenty, 2), (scarce, 3)))
        await wait_for_lock_waiter(database_url)
        await other.execute("UPDATE orders.products SET stock = 1 WHERE id = %s", (scarce["id"],))
        await other.commit()
    response = await pending
    assert response.status_code == 409
    assert response.json()["unavailable"] == [
        {"product_id": scarce["id"], "sku": scarce["sku"], "requested": 3, "available": 1}
    ]
    # All or nothing: the line that could be served was given back.
    assert stock_in_db(database_url, plenty) == 5
    assert stock_in_db(database_url, scarce) == 1
    assert sold_per_product(database_url) == {}


async def wait_for_lock_waiter(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as watcher:
        for _ in range(500):
            cursor = await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            row = await cursor.fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the order never waited for the row lock")


async def test_a_reservation_that_loses_the_race_names_what_each_line_could_have(
    make_product: ProductFactory, database_url: str
) -> None:
    """The lines were priced while the stock sufficed and others took it before the row lock:
    the reservation takes nothing and says what each line could have had, its own decrements
    counted back. Placing orders reaches this path only when a race is lost, so it is driven
    here directly."""
    from shopstack_common.problems import ProblemError
    from shopstack_orders.catalog.stock import StockLine

    # Rows are locked in id order: the first is taken before the second is found short.
    first, second = sorted([await make_product(stock=5), await make_product(stock=5)], key=by_id)
    lines = [StockLine(uuid.UUID(first["id"]), 4), StockLine(uuid.UUID(second["id"]), 6)]
    refused = await reserve_directly(database_url, lines)
    assert isinstance(refused, ProblemError)
    # The first line's 4 units, taken and about to be rolled back, still count as available.
    assert refused.errors == [
        {"field": "items[1].quantity", "location": "body", "message": "5 available"}
    ]
    assert str(refused) == f"Not enough stock for {second['sku']} (5 available)."
    assert stock_in_db(database_url, first) == 5
    assert stock_in_db(database_url, second) == 5


async def test_a_lost_race_names_every_line_short_now_and_no_line_that_fits(
    make_product: ProductFactory, database_url: str
) -> None:
    """Three lines in id order: the first fits exactly and is taken, the second is found short,
    the third, never tried, is short too. The problem names the second and the third."""
    from shopstack_common.problems import ProblemError
    from shopstack_orders.catalog.stock import StockLine

    products = sorted([await make_product(stock=5) for _ in range(3)], key=by_id)
    for product, stock in zip(products, (4, 5, 2), strict=True):
        await set_stock(database_url, product, stock)
    lines = [StockLine(uuid.UUID(p["id"]), n) for p, n in zip(products, (4, 6, 3), strict=True)]
    refused = await reserve_directly(database_url, lines)
    assert isinstance(refused, ProblemError)
    assert refused.errors == [
        {"field": "items[1].quantity", "location": "body", "message": "5 available"},
        {"field": "items[2].quantity", "location": "body", "message": "2 available"},
    ]
    assert str(refused) == (
        f"Not enough stock for {products[1]['sku']} (5 available), "
        f"{products[2]['sku']} (2 available)."
    )
    assert [stock_in_db(database_url, p) for p in products] == [4, 5, 2]


async def set_stock(database_url: str, product: dict[str, Any], stock: int) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        await connection.execute(
            "UPDATE orders.products SET stock = %s WHERE id = %s", (stock, product["id"])
        )


async def reserve_directly(database_url: str, lines: list[Any]) -> Exception | None:
    """``reserve`` in a transaction of its own, rolled back; what it raised, if anything."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from shopstack_common.settings import sqlalchemy_url
    from shopstack_orders.catalog.stock import reserve

    engine = create_async_engine(sqlalchemy_url(database_url, "asyncpg"))
    try:
        async with AsyncSession(engine) as session, session.begin():
            try:
                await reserve(session=session, lines=lines)
            except Exception as error:  # what was raised is the caller's to judge
                return error
            finally:
                await session.rollback()
    finally:
        await engine.dispose()
    return None
