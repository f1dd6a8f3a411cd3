from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
TEA = {"sku": "TEA-1", "name": "Green tea", "price": 450, "currency": "EUR", "stock": 10}


async def test_create_then_read_product(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/products", json=TEA)
    assert created.status_code == 201
    product = created.json()
    assert {k: product[k] for k in TEA} == TEA
    read = await client.get(f"/api/v1/products/{product['id']}")
    assert read.status_code == 200
    assert read.json() == product
    # The second read is served from Redis, and says the same.
    again = await client.get(f"/api/v1/products/{product['id']}")
    assert again.json() == product


async def test_duplicate_sku_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/products", json=TEA)).status_code == 201
    duplicate = await client.post("/api/v1/products", json=TEA)
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["field"] == "sku"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": -1}, "price"),
        ({"price": "cheap"}, "price"),
        ({"currency": "euro"}, "currency"),
        ({"stock": -5}, "stock"),
        ({"sku": ""}, "sku"),
        ({"name": "x" * 201}, "name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/products", json={**TEA, **change})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_unknown_product_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_reads_fall_back_to_postgres_when_redis_is_down(
    client: httpx.AsyncClient, make_client: ClientFactory, dead_redis_url: str
) -> None:
    product = (await client.post("/api/v1/products", json=TEA)).json()
    async with make_client(redis_url=dead_redis_url) as without_redis:
        read = await without_redis.get(f"/api/v1/products/{product['id']}")
    assert read.status_code == 200
    assert read.json() == product
