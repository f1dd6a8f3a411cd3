from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shopstack_orders.orders.lifecycle import (
    NEXT_STATUSES,
    OrderStatus,
    can_transition,
    returns_stock,
)

if TYPE_CHECKING:
    from services.orders.tests.conftest import MetricReader, OrderPlacer, ProductFactory

STATUSES = [status.value for status in OrderStatus]
LEGAL = {
    ("pending", "paid"),
    ("paid", "shipped"),
    ("shipped", "delivered"),
    ("pending", "cancelled"),
    ("paid", "cancelled"),
}
# The shortest way to bring a new order into each status.
PATH_TO = {
    "pending": [],
    "paid": ["paid"],
    "shipped": ["paid", "shipped"],
    "delivered": ["paid", "shipped", "delivered"],
    "cancelled": ["cancelled"],
}


def test_the_table_is_the_documented_life_cycle() -> None:
    table = {(a.value, b.value) for a, nexts in NEXT_STATUSES.items() for b in nexts}
    assert table == LEGAL
    returning = [
        (a.value, b.value) for a in OrderStatus for b in OrderStatus if returns_stock(a, b)
    ]
    assert returning == [("pending", "cancelled"), ("paid", "cancelled")]
    assert not can_transition(OrderStatus.CANCELLED, OrderStatus.CANCELLED)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
async def test_every_status_pair(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
    metric: MetricReader,
    current: str,
    target: str,
) -> None:
    tea = await make_product(stock=10)
    order = (await place(alice, (tea, 4))).json()
    path = f"/api/v1/orders/{order['id']}"
    for step in PATH_TO[current]:
        moved = await client.post(f"{path}/transitions", json={"to": step}, headers=admin)
        assert moved.status_code == 200, moved.text
    before = (await client.get(path, headers=admin)).json()
    assert before["status"] == current
    stock_before = (await client.get(f"/api/v1/products/{tea['id']}")).json()["stock"]
    counted = {"from_status": current, "to_status": target}
    counted_before = await metric("shopstack_orders_transitions_total", **counted)

    response = await client.post(f"{path}/transitions", json={"to": target}, headers=admin)

    stock_after = (await client.get(f"/api/v1/products/{tea['id']}")).json()["stock"]
    after = (await client.get(path, headers=admin)).json()
    if (current, target) in LEGAL:
        assert response.status_code == 200, response.text
        assert response.json() == after
        assert after["status"] == target
        last = after["transitions"][-1]
        assert (last["from"], last["to"]) == (current, target)
        assert last["actor"] == admin["X-Shopstack-User-Id"]
        assert len(after["transitions"]) == len(before["transitions"]) + 1
        # Cancelling returns the order's stock; nothing else moves it.
        assert stock_after == stock_before + (4 if target == "cancelled" else 0)
        counted_after = await metric("shopstack_orders_transitions_total", **counted)
        assert counted_after == counted_before + 1
    else:
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["from"], problem["to"]) == (current, target)
        allowed = sorted(b for a, b in LEGAL if a == current)
        assert problem["allowed"] == allowed
        assert problem["detail"] == f"An order that is {current} cannot become {target}; " + (
            f"it can become {', '.join(allowed)}." if allowed else "its status is final."
        )
        assert after == before
        assert stock_after == stock_before


async def test_the_history_records_every_change_in_order(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
) -> None:
    order = (await place(alice, (await make_product(), 1))).json()
    path = f"/api/v1/orders/{order['id']}"
    for step in ("paid", "shipped", "delivered"):
        await client.post(f"{path}/transitions", json={"to": step}, headers=admin)
    history = (await client.get(path, headers=alice)).json()["transitions"]
    assert [(t["from"], t["to"]) for t in history] == [
        (None, "pending"),
        ("pending", "paid"),
        ("paid", "shipped"),
        ("shipped", "delivered"),
    ]
    assert [t["actor"] for t in history] == [alice["X-Shopstack-User-Id"]] + [
        admin["X-Shopstack-User-Id"]
    ] * 3
    times = [t["at"] for t in history]
    assert times == sorted(times)


@pytest.mark.parametrize("status", ["shipped", "delivered", "cancelled"])
async def test_the_owner_cannot_cancel_past_paid(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
    status: str,
) -> None:
    order = (await place(alice, (await make_product(), 1))).json()
    path = f"/api/v1/orders/{order['id']}"
    for step in PATH_TO[status]:
        await client.post(f"{path}/transitions", json={"to": step}, headers=admin)
    response = await client.post(f"{path}/cancel", headers=alice)
    assert response.status_code == 409
    assert response.json()["from"] == status


@pytest.mark.parametrize("body", [{"to": "lost"}, {}, {"to": "paid", "why": "x"}])
async def test_bad_transition_bodies_are_422(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
    body: dict[str, Any],
) -> None:
    order = (await place(alice, (await make_product(), 1))).json()
    response = await client.post(
        f"/api/v1/orders/{order['id']}/transitions", json=body, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in {"to", "why"}


async def test_transition_of_unknown_order_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/orders/00000000-0000-4000-8000-000000000000/transitions",
        json={"to": "paid"},
        headers=admin,
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "No order 00000000-0000-4000-8000-000000000000."
