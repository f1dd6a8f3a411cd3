"""The rate-limit middleware on the real Redis: on its own for HTTP requests and WebSocket
upgrades, then through the gateway with each policy."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import REGISTRY

from shopstack_common.asgi import Receive, Scope, Send
from shopstack_gateway.config import RateLimitSettings
from shopstack_gateway.middleware.rate_limit import RateLimitMiddleware
from shopstack_gateway.ratelimit import RateLimiter

from ..conftest import (
    DEAD_REDIS,
    GatewayFactory,
    Issuer,
    UpstreamServer,
    client_of,
    websocket_handshake,
)


def ok_app() -> web.Application:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    return app


async def accept(scope: Scope, receive: Receive, send: Send) -> None:
    """The next app in the chain: accepts whatever reaches it."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept", "headers": [(b"x-next", b"1")]})
    else:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def limited(limiter: RateLimiter | None, *, limit: int = 2) -> RateLimitMiddleware:
    settings = RateLimitSettings.model_validate({"address": {"limit": limit, "window_seconds": 60}})
    return RateLimitMiddleware(accept, settings=settings, limiter=lambda: limiter)


# -- the middleware on its own ----------------------------------------------------------


async def test_websocket_upgrades_are_limited_like_requests(redis_client: aioredis.Redis) -> None:
    app = limited(RateLimiter(redis_client, fail_open=True))
    first = await websocket_handshake(app, "/api/v1/orders/events")
    assert first.accepted
    # Within the limit, the accepted upgrade carries the fields, next to the app's own headers.
    assert first.headers["ratelimit-policy"] == '"address";q=2;w=60'
    assert first.headers["ratelimit"].startswith('"address";r=1;')
    assert first.headers["x-next"] == "1"
    async with client_of(app) as client:  # an HTTP request counts against the same bucket
        assert (await client.get("/api/v1/products")).status_code == 204

    refused = await websocket_handshake(app, "/api/v1/orders/events")
    assert refused.status == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit"].startswith('"address";r=0;')
    assert refused.json()["violated-policies"] == ["address"]
    closed = await websocket_handshake(app, "/api/v1/orders/events", denial_response=False)
    assert closed.close_code == 4429


async def test_a_fail_closed_limiter_refuses_websockets_too() -> None:
    dead = aioredis.Redis.from_url(DEAD_REDIS, socket_timeout=0.2)
    refused = await websocket_handshake(limited(RateLimiter(dead, fail_open=False)), "/ws")
    await dead.aclose()
    assert refused.status == 503
    assert refused.json()["type"] == "/problems/rate-limiter-unavailable"
    assert refused.headers["retry-after"] == "1"


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_exempt_paths_and_a_disabled_limiter_are_not_limited(
    redis_client: aioredis.Redis, kind: str
) -> None:
    apps = {
        "exempt": (limited(RateLimiter(redis_client, fail_open=False), limit=1), "/healthz"),
        "disabled": (limited(None, limit=1), "/api/v1/products"),
    }
    for app, path in apps.values():
        for _ in range(3):
            if kind == "websocket":
                handshake = await websocket_handshake(app, path)
                assert handshake.accepted
                assert "ratelimit" not in handshake.headers
            else:
                async with client_of(app) as client:
                    response = await client.get(path)
                assert response.status_code == 204
                assert "ratelimit" not in response.headers


# -- through the gateway ----------------------------------------------------------------

LIMITS = {
    "address": {"limit": 3, "window_seconds": 60},
    "user": {"limit": 5, "window_seconds": 60},
    "token": {"limit": 2, "window_seconds": 60},
}


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, redis_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_upstream(ok_app()) as url,
        make_gateway({"users": url, "orders": url}, redis_url=redis_url, rate_limit=LIMITS) as gw,
    ):
        yield gw


async def test_anonymous_callers_are_limited_per_address(gateway: httpx.AsyncClient) -> None:
    allowed, limited_before = _decisions("allowed"), _decisions("limited")
    responses = [await gateway.get("/api/v1/products") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert (_decisions("allowed"), _decisions("limited")) == (allowed + 3, limited_before + 1)
    first, limited = responses[0], responses[3]
    assert first.headers["ratelimit-policy"] == '"address";q=3;w=60'
    assert re.fullmatch(r'"address";r=2;t=\d+', first.headers["ratelimit"])

    assert limited.headers["content-type"] == "application/problem+json"
    body = limited.json()
    assert body["status"] == 429
    assert body["type"] == "https://iana.org/assignments/http-problem-types#quota-exceeded"
    assert body["violated-policies"] == ["address"]
    assert body["request_id"] == limited.headers["x-request-id"]
    # A full bucket of 3 per 60 s refills one request every 20 s.
    retry_after = int(limited.headers["retry-after"])
    assert 19 <= retry_after <= 20
    assert limited.headers["ratelimit"] == f'"address";r=0;t={retry_after}'
    assert limited.headers["ratelimit-policy"] == '"address";q=3;w=60'


async def test_a_limited_client_gets_through_again_after_retry_after(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, redis_url: str
) -> None:
    quick = {"address": {"limit": 2, "window_seconds": 2}}  # a burst of 2, then 1 per second
    async with (
        serve_upstream(ok_app()) as url,
        make_gateway({"users": url, "orders": url}, redis_url=redis_url, rate_limit=quick) as gw,
    ):
        statuses = [(await gw.get("/api/v1/products")).status_code for _ in range(2)]
        limited = await gw.get("/api/v1/products")
        assert (statuses, limited.status_code) == ([200, 200], 429)
        assert limited.headers["retry-after"] == "1"
        await asyncio.sleep(int(limited.headers["retry-after"]))
        again = await gw.get("/api/v1/products")
        assert again.status_code == 200
        assert again.headers["ratelimit"].startswith('"address";r=0;')


async def test_authenticated_callers_have_their_own_bucket(
    gateway: httpx.AsyncClient, issuer: Issuer
) -> None:
    for _ in range(3):
        await gateway.get("/api/v1/products")
    assert (await gateway.get("/api/v1/products")).status_code == 429  # the address is spent
    alice, bob = issuer.bearer(sub="11111111-1111-4111-8111-111111111111"), issuer.bearer()
    statuses = [(await gateway.get("/api/v1/orders", headers=alice)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    response = await gateway.get("/api/v1/orders", headers=bob)
    assert response.status_code == 200
    assert response.headers["ratelimit-policy"] == '"user";q=5;w=60'


async def test_the_token_endpoint_has_a_stricter_bucket(gateway: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "username": "a@example.com", "password": "guess"}
    statuses = [(await gateway.post("/api/v1/auth/token", data=form)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await gateway.post("/api/v1/auth/token", data=form)
    assert limited.json()["violated-policies"] == ["token"]
    # The same address may still read the catalogue: another bucket.
    assert (await gateway.get("/api/v1/products")).status_code == 200


async def test_invalid_tokens_count_against_the_address(
    gateway: httpx.AsyncClient, issuer: Issuer
) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [(await gateway.get("/api/v1/orders", headers=bad)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_probes_are_never_limited(gateway: httpx.AsyncClient) -> None:
    statuses = {(await gateway.get("/healthz")).status_code for _ in range(10)}
    assert statuses == {200}


def _decisions(outcome: str, policy: str = "address") -> float:
    value = REGISTRY.get_sample_value(
        "shopstack_gateway_rate_limit_decisions_total", {"policy": policy, "outcome": outcome}
    )
    return value or 0.0


def _fallbacks() -> float:
    value = REGISTRY.get_sample_value(
        "shopstack_dependency_fallbacks_total", {"dependency": "redis", "operation": "ratelimit"}
    )
    return value or 0.0


async def test_requests_pass_while_redis_is_down_and_it_is_counted(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before, failed_open = _fallbacks(), _decisions("failed_open")
    dead = DEAD_REDIS
    async with (
        serve_upstream(ok_app()) as url,
        make_gateway({"users": url, "orders": url}, redis_url=dead, rate_limit=LIMITS) as client,
    ):
        responses = [await client.get("/api/v1/products") for _ in range(10)]
    assert {r.status_code for r in responses} == {200}
    assert not any("ratelimit" in r.headers for r in responses)
    assert _fallbacks() - before == 10
    assert _decisions("failed_open") - failed_open == 10
    # The gateway logs JSON lines to stdout: one for the whole burst.
    log = capsys.readouterr().out
    assert log.count("rate limiting (Redis) failing") == 1


async def test_redis_down_fails_closed_when_configured(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    dead = DEAD_REDIS
    failed_closed = _decisions("failed_closed")
    async with (
        serve_upstream(ok_app()) as url,
        make_gateway(
            {"users": url, "orders": url}, redis_url=dead, rate_limit={"fail_open": False}
        ) as client,
    ):
        response = await client.get("/api/v1/products")
    assert response.status_code == 503
    assert _decisions("failed_closed") == failed_closed + 1
    assert response.json()["type"].endswith("/rate-limiter-unavailable")
    assert response.headers["retry-after"] == "1"
