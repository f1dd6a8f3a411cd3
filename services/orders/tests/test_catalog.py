from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

if TYPE_CHECKING:
    from services.orders.tests.conftest import ProductFactory

TEA = {"sku": "TEA-1", "name": "Green tea", "price": 450, "currency": "EUR", "stock": 10}


async def test_create_then_read_product(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await client.post("/api/v1/products", json=TEA, headers=admin)
    assert created.status_code == 201
    product = created.json()
    assert {k: product[k] for k in TEA} == TEA
    assert product["active"] is True
    assert created.headers["location"] == f"/api/v1/products/{product['id']}"
    read = await client.get(f"/api/v1/products/{product['id']}")
    assert read.status_code == 200
    assert read.json() == product
    # The second read is served from Redis, and says the same.
    again = await client.get(f"/api/v1/products/{product['id']}")
    assert again.json() == product


async def test_duplicate_sku_is_409(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert (await client.post("/api/v1/products", json=TEA, headers=admin)).status_code == 201
    duplicate = await client.post("/api/v1/products", json=TEA, headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert duplicate.json()["errors"][0]["field"] == "sku"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/products", TEA),
        ("PATCH", "/api/v1/products/{id}", {"name": "Black tea"}),
        ("POST", "/api/v1/products/{id}/restock", {"quantity": 5}),
    ],
)
@pytest.mark.parametrize(
    ("who", "status"), [("nobody", 401), ("alice", 403)], ids=["anonymous", "customer"]
)
async def test_catalog_writes_are_for_admins(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    alice: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
    who: str,
    status: int,
) -> None:
    product = await make_product()
    headers = alice if who == "alice" else {}
    response = await client.request(
        method, path.format(id=product["id"]), json=body, headers=headers
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    # Nothing changed.
    assert (await client.get(f"/api/v1/products/{product['id']}")).json() == product


async def test_an_identity_header_that_does_not_parse_is_no_identity(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    forged = admin | {"X-Shopstack-User-Id": "not-a-uuid"}
    response = await client.post("/api/v1/products", json=TEA, headers=forged)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": -1}, "price"),
        ({"price": "cheap"}, "price"),
        ({"price": 100_000_001}, "price"),
        ({"currency": "euro"}, "currency"),
        ({"stock": -5}, "stock"),
        ({"stock": 1_000_000_001}, "stock"),
        ({"sku": ""}, "sku"),
        ({"sku": "has space"}, "sku"),
        ({"name": "x" * 201}, "name"),
        ({"active": "perhaps"}, "active"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], change: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/products", json={**TEA, **change}, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_missing_fields_are_all_named(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/api/v1/products", json={}, headers=admin)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"sku", "name", "price", "currency"}


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"sku": "\xff\xfe"}'], ids=["not-json", "not-utf8"]
)
async def test_a_body_that_cannot_be_read_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], body: bytes
) -> None:
    response = await client.post(
        "/api/v1/products", content=body, headers=admin | {"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/malformed-request")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "450"}, "price"),  # a numeric string is no integer
        ({"stock": True}, "stock"),  # nor is a boolean
        ({"price": 4.5}, "price"),
        ({"active": 1}, "active"),  # and 1 is no boolean
        ({"active": "true"}, "active"),
        ({"name": "Green\x00tea"}, "name"),  # PostgreSQL text cannot hold NUL
        ({"description": "\x00"}, "description"),
    ],
)
async def test_values_are_not_coerced_from_other_json_types(
    client: httpx.AsyncClient, admin: dict[str, str], change: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/products", json={**TEA, **change}, headers=admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_an_integer_may_be_written_with_a_zero_fraction(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # JSON Schema's integer is any number without a fraction, so the schema accepts 450.0.
    response = await client.post(
        "/api/v1/products", json={**TEA, "price": 450.0, "stock": 1e1}, headers=admin
    )
    assert response.status_code == 201, response.text
    assert (response.json()["price"], response.json()["stock"]) == (450, 10)


async def test_a_body_of_another_media_type_is_415(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/products",
        content=json.dumps(TEA),
        headers=admin | {"content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unsupported-media-type")


async def test_unknown_product_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_malformed_product_id_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products/not-a-uuid")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["product_id"]


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory
) -> None:
    product = await make_product()
    response = await client.patch(
        f"/api/v1/products/{product['id']}",
        json={"name": "Sencha", "price": 990, "active": False},
        headers=admin,
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["name"], changed["price"], changed["active"]) == ("Sencha", 990, False)
    assert changed["sku"] == product["sku"]
    assert changed["stock"] == product["stock"]
    assert changed["updated_at"] > product["updated_at"]
    assert (await client.get(f"/api/v1/products/{product['id']}")).json() == changed


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stock": 99}, "stock"),  # stock moves only by restocking and orders
        ({"name": None}, "name"),
        ({"price": -3}, "price"),
        ({"currency": "eur"}, "currency"),
    ],
)
async def test_patch_refuses_bad_changes(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    make_product: ProductFactory,
    body: dict[str, Any],
    field: str,
) -> None:
    product = await make_product()
    response = await client.patch(f"/api/v1/products/{product['id']}", json=body, headers=admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_patch_to_a_taken_sku_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory
) -> None:
    first = await make_product()
    second = await make_product()
    response = await client.patch(
        f"/api/v1/products/{second['id']}", json={"sku": first["sku"]}, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "sku"


async def test_an_empty_patch_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory
) -> None:
    product = await make_product()
    response = await client.patch(f"/api/v1/products/{product['id']}", json={}, headers=admin)
    assert response.status_code == 200
    assert response.json() == product
    assert (await client.get(f"/api/v1/products/{product['id']}")).json() == product


async def test_patch_and_restock_of_unknown_product_are_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    path = f"/api/v1/products/{uuid.uuid4()}"
    assert (await client.patch(path, json={"name": "x"}, headers=admin)).status_code == 404
    assert (await client.patch(path, json={}, headers=admin)).status_code == 404
    restock = await client.post(f"{path}/restock", json={"quantity": 1}, headers=admin)
    assert restock.status_code == 404


async def test_restock_adds_to_the_stock(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory
) -> None:
    product = await make_product(stock=3)
    response = await client.post(
        f"/api/v1/products/{product['id']}/restock", json={"quantity": 7}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["stock"] == 10


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, "lots"])
async def test_restock_quantity_is_bounded(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory, quantity: object
) -> None:
    product = await make_product()
    response = await client.post(
        f"/api/v1/products/{product['id']}/restock", json={"quantity": quantity}, headers=admin
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["quantity"]


async def test_restock_cannot_pass_the_stock_ceiling(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory
) -> None:
    product = await make_product(stock=999_999_999)
    response = await client.post(
        f"/api/v1/products/{product['id']}/restock", json={"quantity": 2}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "quantity", "location": "body", "message": "at most 1"}
    ]
    assert response.json()["detail"] == "Stock is 999999999; it cannot exceed 1000000000."
    assert (await client.get(f"/api/v1/products/{product['id']}")).json()["stock"] == 999_999_999


async def test_restock_may_reach_the_stock_ceiling_exactly(
    client: httpx.AsyncClient, admin: dict[str, str], make_product: ProductFactory
) -> None:
    product = await make_product(stock=999_999_999)
    response = await client.post(
        f"/api/v1/products/{product['id']}/restock", json={"quantity": 1}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["stock"] == 1_000_000_000


async def test_restock_changes_only_its_own_product(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    make_product: ProductFactory,
    database_url: str,
) -> None:
    restocked, other = await make_product(stock=3), await make_product(stock=3)
    response = await client.post(
        f"/api/v1/products/{restocked['id']}/restock", json={"quantity": 4}, headers=admin
    )
    assert response.json()["id"] == restocked["id"]
    # From the database: a cached read could hide a change to the other product.
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT id::text, stock FROM orders.products WHERE id = ANY(%s)",
            ([restocked["id"], other["id"]],),
        ).fetchall()
    assert dict(rows) == {restocked["id"]: 7, other["id"]: 3}
