"""The orders service's metrics that say what the business and the database pool did: the value
of placed orders by currency (replays add nothing) and the pool's connections and waits."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from services.orders.tests.conftest import MetricReader, OrderPlacer, ProductFactory

PLACED = "shopstack_orders_placed_total"
VALUE = "shopstack_orders_placed_value_minor_units_total"


async def test_placed_orders_add_their_total_by_currency_once(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str], metric: MetricReader
) -> None:
    tea = await make_product(price=450, stock=10)
    placed, value = await metric(PLACED, currency="EUR"), await metric(VALUE, currency="EUR")
    key = str(uuid.uuid4())
    first = await place(alice, (tea, 3), key=key)
    replayed = await place(alice, (tea, 3), key=key)
    assert (first.status_code, replayed.status_code) == (201, 201)
    assert replayed.headers["idempotent-replayed"] == "true"
    refused = await place(alice, (tea, 8))
    assert refused.status_code == 409
    assert await metric(PLACED, currency="EUR") == placed + 1
    assert await metric(VALUE, currency="EUR") == value + 3 * 450


async def test_the_pool_reports_its_connections_and_waits(
    client: httpx.AsyncClient, make_product: ProductFactory, metric: MetricReader
) -> None:
    waits = await metric("shopstack_db_pool_wait_seconds_count")
    await make_product()
    assert await metric("shopstack_db_pool_wait_seconds_count") > waits
    # Between requests every connection is back in the pool.
    assert await metric("shopstack_db_pool_connections_in_use") == 0
    assert await metric("shopstack_db_pool_connections_idle") >= 1
    assert await metric("shopstack_db_pool_connections_overflow") == 0
    # The orders defaults: DB_POOL_SIZE 10 plus DB_MAX_OVERFLOW 10.
    assert await metric("shopstack_db_pool_connections_limit") == 20
