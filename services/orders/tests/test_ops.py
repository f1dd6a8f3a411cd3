from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from shopstack_common.identity import Identity
from shopstack_devstack.ports import free_port

if TYPE_CHECKING:
    from services.orders.tests.conftest import ClientFactory


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


async def test_unknown_routes_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("/not-found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/products", "GET, POST"),
        ("PUT", "/api/v1/products/00000000-0000-4000-8000-000000000001", "GET, PATCH"),
        ("OPTIONS", "/api/v1/orders", "GET, POST"),
        ("GET", "/api/v1/orders/00000000-0000-4000-8000-000000000001/cancel", "POST"),
    ],
)
async def test_a_wrong_method_is_405_naming_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    # Every route of the path, not only the first that matched (one route per method here).
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/products/"),
        ("POST", "/api/v1/products/"),
        ("GET", "/api/v1/products/00000000-0000-4000-8000-000000000001/"),
        ("GET", "/api/v1/orders/"),
        ("POST", "/api/v1/orders/"),
        ("GET", "/api/v1/orders/summary/"),
        ("POST", "/api/v1/orders/00000000-0000-4000-8000-000000000001/cancel/"),
    ],
)
async def test_a_trailing_slash_is_a_404_not_a_redirect_to_this_service(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, path: str
) -> None:
    """A redirect would name this service's own address, which clients of the gateway must
    never see (issue 17)."""
    response = await client.request(method, path, headers=admin, json={})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "location" not in response.headers
