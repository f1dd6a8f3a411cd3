"""Rate limits on the real Redis (the ``redis_url`` fixture), never a stand-in for it."""

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import REGISTRY

from shopstack_devstack.ports import free_port
from shopstack_gateway.ratelimit import Policy, RateLimiter, RateLimiterUnavailableError

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
UpstreamServer = Callable[..., AbstractAsyncContextManager[str]]


def ok_app() -> web.Application:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    return app


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


# -- the limiter on its own, on the real Redis ------------------------------------------


async def test_burst_passes_then_limited_then_refills(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client, fail_open=True)
    policy = Policy(name="user", limit=3, window_seconds=3)  # a burst of 3, then 1 per second
    decisions = [await limiter.check(policy, "alice") for _ in range(3)]
    assert [d.allowed for d in decisions if d] == [True, True, True]
    assert [d.remaining for d in decisions if d] == [2, 1, 0]

    limited = await limiter.check(policy, "alice")
    assert limited is not None
    assert not limited.allowed
    assert 0 < limited.retry_after_seconds <= 1.0
    assert limited.retry_after == 1

    await asyncio.sleep(limited.retry_after_seconds + 0.05)
    refilled = await limiter.check(policy, "alice")
    assert refilled is not None
    assert refilled.allowed


async def test_buckets_are_per_partition_and_expire(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client, fail_open=True)
    policy = Policy(name="address", limit=1, window_seconds=60)
    assert (await limiter.check(policy, "198.51.100.1")).allowed  # type: ignore[union-attr]
    assert not (await limiter.check(policy, "198.51.100.1")).allowed  # type: ignore[union-attr]
    assert (await limiter.check(policy, "198.51.100.2")).allowed  # type: ignore[union-attr]
    keys = sorted(k.decode() for k in await redis_client.keys("*"))
    assert keys == ["gw:rl:address:198.51.100.1", "gw:rl:address:198.51.100.2"]
    for key in keys:
        assert 0 < await redis_client.pttl(key) <= 60_000


async def test_a_huge_limit_still_counts(redis_client: aioredis.Redis) -> None:
    # The interval rounds to zero microseconds and the TTL to zero milliseconds unless kept
    # at their minimum; Redis refuses a zero TTL, which fails closed here.
    limiter = RateLimiter(redis_client, fail_open=False)
    policy = Policy(name="user", limit=10**9, window_seconds=1)
    decisions = [await limiter.check(policy, "carol") for _ in range(3)]
    assert all(d is not None and d.allowed for d in decisions)


async def test_the_script_is_loaded_again_after_a_redis_restart(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, fail_open=False)
    policy = Policy(name="user", limit=5, window_seconds=60)
    await limiter.check(policy, "bob")
    await redis_client.script_flush()  # what a restarted Redis forgets
    decision = await limiter.check(policy, "bob")
    assert decision is not None
    assert decision.remaining == 3


async def test_dead_redis_fails_open_or_closed_as_configured() -> None:
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2)
    policy = Policy(name="user", limit=5, window_seconds=60)
    assert await RateLimiter(dead, fail_open=True).check(policy, "x") is None
    with pytest.raises(RateLimiterUnavailableError):
        await RateLimiter(dead, fail_open=False).check(policy, "x")
    await dead.aclose()


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
    responses = [await gateway.get("/api/v1/products") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
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
    gateway: httpx.AsyncClient, issuer: Any
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
    gateway: httpx.AsyncClient, issuer: Any
) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [(await gateway.get("/api/v1/orders", headers=bad)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_probes_are_never_limited(gateway: httpx.AsyncClient) -> None:
    statuses = {(await gateway.get("/healthz")).status_code for _ in range(10)}
    assert statuses == {200}


def _fallbacks() -> float:
    value = REGISTRY.get_sample_value(
        "shopstack_dependency_fallbacks_total", {"dependency": "redis", "operation": "ratelimit"}
    )
    return value or 0.0


async def test_requests_pass_while_redis_is_down_and_it_is_counted(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fallbacks()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with (
        serve_upstream(ok_app()) as url,
        make_gateway({"users": url, "orders": url}, redis_url=dead, rate_limit=LIMITS) as client,
    ):
        responses = [await client.get("/api/v1/products") for _ in range(10)]
    assert {r.status_code for r in responses} == {200}
    assert not any("ratelimit" in r.headers for r in responses)
    assert _fallbacks() - before == 10
    # The gateway logs JSON lines to stdout: one for the whole burst.
    log = capsys.readouterr().out
    assert log.count("rate limiting (Redis) failing") == 1


async def test_redis_down_fails_closed_when_configured(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with (
        serve_upstream(ok_app()) as url,
        make_gateway(
            {"users": url, "orders": url}, redis_url=dead, rate_limit={"fail_open": False}
        ) as client,
    ):
        response = await client.get("/api/v1/products")
    assert response.status_code == 503
    assert response.json()["type"].endswith("/rate-limiter-unavailable")
    assert response.headers["retry-after"] == "1"
