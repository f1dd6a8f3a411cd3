import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from shopstack_common.identity import Identity
from shopstack_devstack.ports import free_port

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_readyz_answers_when_postgres_and_redis_do(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"postgres", "redis"}


async def test_readyz_names_the_dead_dependency(
    make_client: ClientFactory, dead_redis_url: str
) -> None:
    async with make_client(redis_url=dead_redis_url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["redis"]["status"] == "fail"
    assert response.json()["checks"]["postgres"]["status"] == "ok"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/products/00000000-0000-0000-0000-000000000001")
    text = (await client.get("/metrics")).text
    assert (
        'shopstack_http_requests_total{method="GET",route="/api/v1/products/{product_id}",status="4xx"}'
        in text
    )


@pytest.fixture
def dead_database_url() -> str:
    return f"postgresql://postgres:secret@127.0.0.1:{free_port()}/shopstack"


@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        ("GET", "/api/v1/products/00000000-0000-4000-8000-000000000001", None),
        ("GET", "/api/v1/products", None),
        ("GET", "/api/v1/orders", "customer"),
        ("GET", "/api/v1/orders/summary", "customer"),
        ("POST", "/api/v1/orders", "customer"),
        ("POST", "/api/v1/products", "admin"),
    ],
)
async def test_a_dead_database_is_a_clean_503(
    make_client: ClientFactory,
    dead_database_url: str,
    method: str,
    path: str,
    who: str | None,
) -> None:
    identity = Identity(user_id=uuid.uuid4(), roles=frozenset({who})) if who else None
    bodies = {
        "/api/v1/orders": {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]},
        "/api/v1/products": {"sku": "S", "name": "N", "price": 1, "currency": "EUR"},
    }
    async with make_client(database_url=dead_database_url) as client:
        response = await client.request(
            method,
            path,
            json=bodies.get(path) if method == "POST" else None,
            headers=identity.to_headers() if identity else {},
        )
        ready = await client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("/database-unavailable")
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"]["status"] == "fail"


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await client.delete("/api/v1/products")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_the_openapi_document_describes_the_api(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/products",
        "/api/v1/products/{product_id}",
        "/api/v1/products/{product_id}/restock",
        "/api/v1/orders",
        "/api/v1/orders/summary",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/cancel",
        "/api/v1/orders/{order_id}/transitions",
    }
    place = paths["/api/v1/orders"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in place["parameters"])
    assert "application/problem+json" in place["responses"]["409"]["content"]
