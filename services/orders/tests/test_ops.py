from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

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
