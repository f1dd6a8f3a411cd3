"""What the lifespan opens, and /readyz: readiness is about the gateway itself, never about
whether users or orders answer; Redis counts only when the limiter fails closed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .conftest import NOWHERE, GatewayFactory


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status_code, response.json()


async def wait_for_keys(client: httpx.AsyncClient) -> None:
    for _ in range(100):
        _, body = await ready(client)
        if body["checks"]["signing_keys"]["status"] == "ok":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the signing keys were never loaded")


async def test_ready_with_dead_upstreams_and_everything_in_place(
    make_gateway: GatewayFactory, redis_url: str
) -> None:
    nowhere = NOWHERE
    async with make_gateway({"users": nowhere, "orders": nowhere}, redis_url=redis_url) as client:
        await wait_for_keys(client)
        status, body = await ready(client)
    assert status == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"signing_keys", "upstream_orders", "upstream_users", "redis"}


async def test_redis_down_is_degraded_while_the_limiter_fails_open(
    make_gateway: GatewayFactory,
) -> None:
    nowhere = NOWHERE
    async with make_gateway({"users": nowhere, "orders": nowhere}) as client:  # dead Redis
        await wait_for_keys(client)
        status, body = await ready(client)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "degraded"
    assert body["checks"]["redis"]["error"]


async def test_redis_down_is_not_ready_when_the_limiter_fails_closed(
    make_gateway: GatewayFactory,
) -> None:
    nowhere = NOWHERE
    async with make_gateway(
        {"users": nowhere, "orders": nowhere}, rate_limit={"fail_open": False}
    ) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/not-ready"
    assert body["checks"]["redis"]["status"] == "fail"


async def test_without_rate_limits_redis_is_not_checked(make_gateway: GatewayFactory) -> None:
    nowhere = NOWHERE
    async with make_gateway(
        {"users": nowhere, "orders": nowhere}, rate_limit={"enabled": False}
    ) as client:
        _, body = await ready(client)
    assert "redis" not in body["checks"]


async def test_no_signing_keys_is_degraded(make_gateway: GatewayFactory, redis_url: str) -> None:
    nowhere = NOWHERE
    async with make_gateway(
        {"users": nowhere, "orders": nowhere},
        redis_url=redis_url,
        jwks_url=f"{nowhere}/.well-known/jwks.json",
    ) as client:
        status, body = await ready(client)
        # Public routes need no keys; token-bearing requests get 503 until there are some.
        assert (await client.get("/problems")).status_code == 200
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["signing_keys"]["status"] == "degraded"


async def test_an_open_circuit_is_reported_and_does_not_make_it_unready(
    make_gateway: GatewayFactory, redis_url: str
) -> None:
    nowhere = NOWHERE
    options = {"breaker": {"failure_threshold": 1}, "retry": {"attempts": 1}}
    async with make_gateway(
        {"users": nowhere, "orders": nowhere}, redis_url=redis_url, upstream_options=options
    ) as client:
        assert (await client.get("/api/v1/products")).status_code == 502
        status, body = await ready(client)
    assert status == 200
    assert body["checks"]["upstream_orders"]["status"] == "degraded"
    assert "circuit open" in body["checks"]["upstream_orders"]["error"]
    assert body["checks"]["upstream_users"]["status"] == "ok"
