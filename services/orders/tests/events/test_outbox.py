"""events/outbox.py: every order and stock change writes its event in its own transaction,
and a change that does not commit writes none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from ..conftest import ADMIN, ALICE
from .conftest import outbox_rows

if TYPE_CHECKING:
    from services.orders.tests.conftest import OrderPlacer, ProductFactory


def kinds(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(row["type"], str(row["subject_id"]), row["version"]) for row in rows]


async def test_an_order_life_writes_one_event_per_change_in_order(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    database_url: str,
) -> None:
    alice, admin = ALICE.to_headers(), ADMIN.to_headers()
    tea = await make_product(stock=5)
    placed = await place(alice, (tea, 2))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    for target in ("paid", "shipped", "delivered"):
        moved = await client.post(
            f"/api/v1/orders/{order['id']}/transitions", json={"to": target}, headers=admin
        )
        assert moved.status_code == 200, moved.text

    rows = outbox_rows(database_url)
    assert kinds(rows) == [
        ("order.placed", order["id"], 1),
        ("stock.changed", tea["id"], 1),
        ("order.paid", order["id"], 2),
        ("order.shipped", order["id"], 3),
        ("order.delivered", order["id"], 4),
    ]
    assert rows[0]["user_id"] == rows[2]["user_id"]
    assert str(rows[0]["user_id"]) == order["user_id"]
    assert rows[0]["payload"] == {
        "order_id": order["id"],
        "user_id": order["user_id"],
        "status": "pending",
        "previous_status": None,
        "actor": order["user_id"],
        "total": 900,
        "currency": "EUR",
    }
    assert rows[1]["payload"] == {
        "product_id": tea["id"],
        "stock": 3,
        "change": -2,
        "reason": "reserved",
    }
    assert rows[1]["user_id"] is None
    # A transition's event: who moved the order, and what it is worth.
    assert rows[2]["payload"] == {
        "order_id": order["id"],
        "user_id": order["user_id"],
        "status": "paid",
        "previous_status": "pending",
        "actor": str(ADMIN.user_id),
        "total": 900,
        "currency": "EUR",
    }
    assert all(row["published_at"] is None for row in rows)


async def test_cancelling_and_restocking_write_their_events(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    database_url: str,
) -> None:
    alice, admin = ALICE.to_headers(), ADMIN.to_headers()
    tea = await make_product(stock=5)
    order = (await place(alice, (tea, 2))).json()
    cancelled = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=alice)
    assert cancelled.status_code == 200, cancelled.text
    restocked = await client.post(
        f"/api/v1/products/{tea['id']}/restock", json={"quantity": 10}, headers=admin
    )
    assert restocked.status_code == 200, restocked.text

    rows = outbox_rows(database_url)
    assert kinds(rows) == [
        ("order.placed", order["id"], 1),
        ("stock.changed", tea["id"], 1),
        ("order.cancelled", order["id"], 2),
        ("stock.changed", tea["id"], 2),
        ("stock.changed", tea["id"], 3),
    ]
    assert [row["payload"] for row in rows[3:]] == [
        {"product_id": tea["id"], "stock": 5, "change": 2, "reason": "released"},
        {"product_id": tea["id"], "stock": 15, "change": 10, "reason": "restocked"},
    ]
    assert rows[2]["payload"]["previous_status"] == "pending"


async def test_a_refused_change_writes_no_event(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    database_url: str,
) -> None:
    alice, admin = ALICE.to_headers(), ADMIN.to_headers()
    tea, coffee = await make_product(stock=5), await make_product(stock=1)
    order = (await place(alice, (tea, 1))).json()
    before = outbox_rows(database_url)
    # Too little coffee: the whole order is refused, the tea line with it.
    short = await place(alice, (tea, 1), (coffee, 2))
    assert short.status_code == 409, short.text
    illegal = await client.post(
        f"/api/v1/orders/{order['id']}/transitions", json={"to": "delivered"}, headers=admin
    )
    assert illegal.status_code == 409, illegal.text
    assert outbox_rows(database_url) == before


async def test_a_replayed_request_writes_no_second_event(
    make_product: ProductFactory, place: OrderPlacer, alice: dict[str, str], database_url: str
) -> None:
    tea = await make_product(stock=5)
    first = await place(alice, (tea, 1), key="once")
    again = await place(alice, (tea, 1), key="once")
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json() == again.json()
    assert [row["type"] for row in outbox_rows(database_url)] == ["order.placed", "stock.changed"]
