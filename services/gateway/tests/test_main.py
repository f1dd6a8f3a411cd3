"""The wired gateway under a real server (uvicorn, as ``serve`` runs it): a WebSocket upgrade is
answered on the wire like a request, with the same problem+json, through the ASGI WebSocket
Denial Response extension that uvicorn supports."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shopstack_gateway.main import create_app

from .conftest import Issuer, Recorder, UpstreamServer, gateway_settings, serve_with_uvicorn


async def refusal(url: str, headers: Mapping[str, str] | None = None) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers, open_timeout=5):
            pass
    return refused.value


@pytest.fixture
async def gateway(
    serve_upstream: UpstreamServer, recorder: Recorder, jwks_url: str, redis_url: str
) -> AsyncIterator[str]:
    limits = {"address": {"limit": 3, "window_seconds": 60}}
    async with (
        serve_upstream(recorder.app()) as upstream,
        serve_with_uvicorn(
            create_app(
                gateway_settings(
                    {"users": upstream, "orders": upstream},
                    jwks_url=jwks_url,
                    redis_url=redis_url,
                    rate_limit=limits,
                )
            )
        ) as at,
    ):
        yield at


async def test_a_websocket_without_a_token_gets_a_401_problem(gateway: str) -> None:
    refused = await refusal(f"ws://{gateway}/api/v1/orders/events")
    response = refused.response
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="shopstack"'
    body = json.loads(response.body or b"")
    assert body["type"] == "/problems/authentication-required"
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["RateLimit-Policy"] == '"address";q=3;w=60'


async def test_a_websocket_with_a_token_reaches_the_upstream_as_the_tokens_caller(
    gateway: str, issuer: Issuer, recorder: Recorder
) -> None:
    user_id = str(uuid.uuid4())
    spoofed = {"X-Shopstack-User-Id": str(uuid.uuid4()), "X-Shopstack-Roles": "admin"}
    async with connect(
        f"ws://{gateway}/api/v1/orders/events?order_id=7&ticket=unused",
        additional_headers=issuer.bearer(sub=user_id) | spoofed,
        open_timeout=5,
    ) as socket:
        assert json.loads(await socket.recv()) == {
            "path": "/api/v1/orders/events",
            "query": "order_id=7",
        }
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    # The upstream's close code reaches the client.
    assert socket.close_code == 4000
    (seen,) = recorder.seen
    assert seen["x-shopstack-user-id"] == user_id
    assert seen["x-shopstack-roles"] != "admin"
    assert "authorization" not in seen or seen["authorization"].startswith("Bearer ")


async def test_websocket_attempts_count_against_the_rate_limit(gateway: str) -> None:
    statuses = [
        (await refusal(f"ws://{gateway}/api/v1/orders/events")).response.status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # An HTTP request from the same address shares the bucket.
    async with httpx.AsyncClient() as client:
        limited = await client.get(f"http://{gateway}/api/v1/products")
    assert limited.status_code == 429
