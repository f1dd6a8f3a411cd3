from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from shopstack_common.identity import Identity

if TYPE_CHECKING:
    from services.orders.tests.conftest import OrderPlacer, ProductFactory

ORDERS = "/api/v1/orders"
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")


async def stock_of(client: httpx.AsyncClient, product: dict[str, Any]) -> int:
    stock: int = (await client.get(f"/api/v1/products/{product['id']}")).json()["stock"]
    return stock


async def test_an_order_is_priced_from_the_catalog_and_reserves_stock(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product(price=450, stock=10)
    cup = await make_product(price=1299, stock=4)
    response = await place(alice, (tea, 3), (cup, 2), note="gift wrap, please")
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"{ORDERS}/{order['id']}"
    assert "idempotent-replayed" not in response.headers
    assert order["status"] == "pending"
    assert order["user_id"] == alice["X-Shopstack-User-Id"]
    assert order["currency"] == "EUR"
    assert order["note"] == "gift wrap, please"
    assert order["items"] == [
        {
            "product_id": tea["id"],
            "sku": tea["sku"],
            "quantity": 3,
            "unit_price": 450,
            "line_total": 1350,
        },
        {
            "product_id": cup["id"],
            "sku": cup["sku"],
            "quantity": 2,
            "unit_price": 1299,
            "line_total": 2598,
        },
    ]
    assert order["total"] == 1350 + 2598
    [created] = order["transitions"]
    assert created["from"] is None
    assert created["to"] == "pending"
    assert created["actor"] == alice["X-Shopstack-User-Id"]
    assert created["at"] == order["created_at"]
    assert await stock_of(client, tea) == 7
    assert await stock_of(client, cup) == 2
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=alice)).json() == order


async def test_a_price_sent_by_the_client_is_refused(
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    client: httpx.AsyncClient,
) -> None:
    tea = await make_product()
    body = {"items": [{"product_id": tea["id"], "quantity": 1, "unit_price": 1}]}
    response = await client.post(ORDERS, json=body, headers=alice)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["items[0].unit_price"]


async def test_later_price_changes_do_not_touch_placed_orders(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
) -> None:
    tea = await make_product(price=450)
    order = (await place(alice, (tea, 2))).json()
    await client.patch(f"/api/v1/products/{tea['id']}", json={"price": 999}, headers=admin)
    again = (await client.get(f"{ORDERS}/{order['id']}", headers=alice)).json()
    assert again["items"][0]["unit_price"] == 450
    assert again["total"] == 900


async def test_out_of_stock_is_409_naming_every_short_product(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product(stock=2)
    cup = await make_product(stock=5)
    pot = await make_product(stock=0)
    response = await place(alice, (tea, 3), (cup, 5), (pot, 1))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/out-of-stock")
    assert tea["sku"] in problem["detail"]
    assert pot["sku"] in problem["detail"]
    assert problem["unavailable"] == [
        {"product_id": tea["id"], "sku": tea["sku"], "requested": 3, "available": 2},
        {"product_id": pot["id"], "sku": pot["sku"], "requested": 1, "available": 0},
    ]
    assert [e["field"] for e in problem["errors"]] == ["items[0].quantity", "items[2].quantity"]
    # All or nothing: the line that could be served was not.
    assert [await stock_of(client, p) for p in (tea, cup, pot)] == [2, 5, 0]
    assert (await client.get(ORDERS, headers=alice)).json()["items"] == []


async def test_the_last_units_can_be_bought(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product(stock=3)
    assert (await place(alice, (tea, 3))).status_code == 201
    assert await stock_of(client, tea) == 0
    assert (await place(alice, (tea, 1))).status_code == 409


async def test_unknown_and_inactive_products_are_422(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product()
    retired = await make_product(active=False)
    ghost = {"id": str(uuid.uuid4())}
    response = await place(alice, (tea, 1), (ghost, 1), (retired, 1))
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["items[1].product_id", "items[2].product_id"]
    assert "no such product" in errors[0]["message"]
    assert "not for sale" in errors[1]["message"]
    assert await stock_of(client, tea) == tea["stock"]


async def test_lines_in_different_currencies_are_422(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product(currency="EUR")
    mug = await make_product(currency="USD")
    response = await place(alice, (tea, 1), (mug, 1))
    assert response.status_code == 422
    assert response.json()["type"].endswith("/mixed-currencies")
    assert await stock_of(client, tea) == tea["stock"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({}, "items"),
        ({"items": "tea"}, "items"),
        ({"items": [{"product_id": "P", "quantity": 1}] * 51}, "items"),
        ({"items": [{"product_id": "P", "quantity": 0}]}, "items[0].quantity"),
        ({"items": [{"product_id": "P", "quantity": -2}]}, "items[0].quantity"),
        ({"items": [{"product_id": "P", "quantity": 1001}]}, "items[0].quantity"),
        ({"items": [{"product_id": "P", "quantity": 1.5}]}, "items[0].quantity"),
        ({"items": [{"product_id": "P", "quantity": "1"}]}, "items[0].quantity"),
        ({"items": [{"product_id": "P", "quantity": True}]}, "items[0].quantity"),
        ({"items": [{"product_id": "nope", "quantity": 1}]}, "items[0].product_id"),
        ({"items": [{"quantity": 1}]}, "items[0].product_id"),
        ({"items": [{"product_id": "P", "quantity": 1}] * 2}, "items"),  # one line per product
        ({"items": [{"product_id": "P", "quantity": 1}], "note": "x" * 501}, "note"),
        ({"items": [{"product_id": "P", "quantity": 1}], "note": "a\x00"}, "note"),
        ({"items": [{"product_id": "P", "quantity": 1}], "coupon": "FREE"}, "coupon"),
    ],
)
async def test_bad_orders_name_the_field(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    alice: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    tea = await make_product()
    # "P" stands for the product, which exists only once the test runs.
    concrete = json.loads(json.dumps(body).replace('"P"', f'"{tea["id"]}"'))
    response = await client.post(ORDERS, json=concrete, headers=alice)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == {field}
    assert await stock_of(client, tea) == tea["stock"]


async def test_placing_needs_an_identity_with_a_user(
    client: httpx.AsyncClient, make_product: ProductFactory, place: OrderPlacer
) -> None:
    tea = await make_product()
    assert (await place({}, (tea, 1))).status_code == 401
    service_client = {"X-Shopstack-Client-Id": "reporting", "X-Shopstack-Roles": ""}
    response = await place(service_client, (tea, 1))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


# -- object-level authorization ---------------------------------------------------------------


async def test_someone_elses_order_does_not_exist_for_you(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    bob: dict[str, str],
    admin: dict[str, str],
) -> None:
    tea = await make_product(stock=5)
    order = (await place(alice, (tea, 2))).json()
    path = f"{ORDERS}/{order['id']}"
    missing = await client.get(f"{ORDERS}/{uuid.uuid4()}", headers=bob)
    for response in (
        await client.get(path, headers=bob),
        await client.post(f"{path}/cancel", headers=bob),
    ):
        # Exactly what a missing order looks like, apart from the id it names.
        assert response.status_code == 404
        assert response.json()["type"] == missing.json()["type"]
        assert response.json()["title"] == missing.json()["title"]
    assert (await client.get(ORDERS, headers=bob)).json()["items"] == []
    assert await stock_of(client, tea) == 3  # Bob's cancel did nothing
    assert (await client.get(path, headers=admin)).json() == order
    assert (await client.get(path)).status_code == 401


async def test_transitions_are_for_admins(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    order = (await place(alice, (await make_product(), 1))).json()
    response = await client.post(
        f"{ORDERS}/{order['id']}/transitions", json={"to": "paid"}, headers=alice
    )
    assert response.status_code == 403
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=alice)).json() == order


async def test_an_admin_may_cancel_anyones_order(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
) -> None:
    tea = await make_product(stock=5)
    order = (await place(alice, (tea, 5))).json()
    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=admin)
    assert cancelled.status_code == 200
    assert cancelled.json()["transitions"][-1]["actor"] == admin["X-Shopstack-User-Id"]
    assert await stock_of(client, tea) == 5


# -- lists and summary ------------------------------------------------------------------------


async def test_the_list_is_the_callers_newest_first(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    bob: dict[str, str],
) -> None:
    tea = await make_product(stock=50)
    mine = [(await place(alice, (tea, 1))).json() for _ in range(3)]
    await place(bob, (tea, 1))
    listed = (await client.get(ORDERS, headers=alice)).json()
    assert [o["id"] for o in listed["items"]] == [o["id"] for o in reversed(mine)]
    assert listed["next_cursor"] is None
    assert listed["items"][0] == mine[-1]


async def test_order_pages_have_no_duplicates_or_gaps_while_orders_arrive(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    tea = await make_product(stock=100)
    before = [(await place(alice, (tea, 1))).json()["id"] for _ in range(11)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(ORDERS, params=params, headers=alice)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        await place(alice, (tea, 1))  # newer than every page: must not shift the next one
    assert seen == list(reversed(before))


async def test_admin_filters_by_user_status_and_time(
    *,
    client: httpx.AsyncClient,
    database_url: str,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    bob: dict[str, str],
    admin: dict[str, str],
) -> None:
    tea = await make_product(stock=50)
    old = (await place(alice, (tea, 1))).json()
    paid = (await place(alice, (tea, 1))).json()
    await client.post(f"{ORDERS}/{paid['id']}/transitions", json={"to": "paid"}, headers=admin)
    bobs = (await place(bob, (tea, 1))).json()
    # Backdate one order so a time range can tell it apart.
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE orders.orders SET created_at = created_at - interval '10 days' WHERE id = %s",
            (old["id"],),
        )

    async def ids(**params: Any) -> list[str]:
        response = await client.get(ORDERS, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    alice_id = alice["X-Shopstack-User-Id"]
    assert await ids() == []  # an admin's own list is their own orders
    assert await ids(user_id=alice_id) == [paid["id"], old["id"]]
    assert await ids(all_users="true") == [bobs["id"], paid["id"], old["id"]]
    assert await ids(all_users="true", status="paid") == [paid["id"]]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert await ids(user_id=alice_id, created_after=since) == [paid["id"]]
    assert await ids(user_id=alice_id, created_before=since) == [old["id"]]
    # A customer may narrow their own list too.
    own = await client.get(ORDERS, params={"status": "pending"}, headers=alice)
    assert [o["id"] for o in own.json()["items"]] == [old["id"]]


@pytest.mark.parametrize(
    ("scopes", "status"), [(frozenset({"orders:read"}), 200), (frozenset({"profile"}), 403)]
)
async def test_a_service_client_with_orders_read_filters_by_user(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    bob: dict[str, str],
    scopes: frozenset[str],
    status: int,
) -> None:
    tea = await make_product(stock=5)
    alices = (await place(alice, (tea, 1))).json()
    await place(bob, (tea, 1))
    service = Identity(client_id="users-console", scopes=scopes).to_headers()
    response = await client.get(
        ORDERS, params={"user_id": alice["X-Shopstack-User-Id"]}, headers=service
    )
    assert response.status_code == status, response.text
    if status == 200:
        assert [o["id"] for o in response.json()["items"]] == [alices["id"]]
    else:
        assert [e["field"] for e in response.json()["errors"]] == ["user_id"]
    # Without a filter a service client still owns no orders of its own.
    own = await client.get(ORDERS, headers=service)
    assert own.json()["items"] == []


@pytest.mark.parametrize(
    "params", [{"user_id": "00000000-0000-4000-8000-0000000000b0"}, {"all_users": "true"}]
)
async def test_customers_cannot_look_at_other_users(
    client: httpx.AsyncClient, alice: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get(ORDERS, params=params, headers=alice)
    assert response.status_code == 403
    assert [e["field"] for e in response.json()["errors"]] == list(params)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": 101}, "limit"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-01-01T00:00:00"}, "created_before"),  # no time zone
        ({"created_before": "0.5"}, "created_before"),  # not seconds since 1970
        ({"created_after": "1764547200"}, "created_after"),
        # Valid RFC 3339, but past year 9999 (or before year 1) once read in UTC.
        ({"created_after": "9999-12-31T23:59:59-14:00"}, "created_after"),
        ({"created_before": "0001-01-01T00:00:00+14:00"}, "created_before"),
        ({"user_id": "alice"}, "user_id"),
        ({"all_users": "1"}, "all_users"),
        ({"all_users": "on"}, "all_users"),
        ({"cursor": "garbage!"}, "cursor"),
    ],
)
async def test_bad_order_list_parameters_name_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = await client.get(ORDERS, params=params, headers=admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_cursor_cannot_be_used_for_someone_elses_list(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    admin: dict[str, str],
) -> None:
    tea = await make_product(stock=5)
    for _ in range(2):
        await place(alice, (tea, 1))
    page = (await client.get(ORDERS, params={"limit": 1}, headers=alice)).json()
    reused = await client.get(ORDERS, params={"cursor": page["next_cursor"]}, headers=admin)
    assert reused.status_code == 422


async def test_summary_counts_the_callers_orders_by_status(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
    bob: dict[str, str],
    admin: dict[str, str],
) -> None:
    empty = (await client.get(f"{ORDERS}/summary", headers=alice)).json()
    assert empty == {
        "counts_by_status": dict.fromkeys(STATUSES, 0),
        "total": 0,
    }
    tea = await make_product(stock=20)
    orders = [(await place(alice, (tea, 1))).json() for _ in range(4)]
    await place(bob, (tea, 1))
    await client.post(f"{ORDERS}/{orders[0]['id']}/cancel", headers=alice)
    await client.post(f"{ORDERS}/{orders[1]['id']}/transitions", json={"to": "paid"}, headers=admin)
    summary = (await client.get(f"{ORDERS}/summary", headers=alice)).json()
    assert summary["counts_by_status"] == {
        "pending": 2,
        "paid": 1,
        "shipped": 0,
        "delivered": 0,
        "cancelled": 1,
    }
    assert summary["total"] == 4
    assert (await client.get(f"{ORDERS}/summary")).status_code == 401


async def test_a_service_clients_summary_counts_no_orders(
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    alice: dict[str, str],
) -> None:
    await place(alice, (await make_product(), 1))
    service = Identity(client_id="users-console", scopes=frozenset({"orders:read"})).to_headers()
    response = await client.get(f"{ORDERS}/summary", headers=service)
    assert response.status_code == 200
    assert response.json() == {"counts_by_status": dict.fromkeys(STATUSES, 0), "total": 0}
