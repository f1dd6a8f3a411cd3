"""Client-sent identity headers are removed, for HTTP requests and WebSocket upgrades alike, and
only the verified identity ever reaches an upstream."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shopstack_common.asgi import Receive, Scope, Send
from shopstack_gateway.middleware.identity_headers import StripIdentityHeadersMiddleware

from ..conftest import Issuer, Recorder, websocket_handshake

SPOOFED = {
    "X-Shopstack-User-Id": "00000000-0000-0000-0000-000000000001",
    "X-Shopstack-Roles": "admin",
    "X-Shopstack-Client-Id": "trusted-backend",
    "x-shopstack-anything-else": "1",
}


class Inner:
    """The next app in the chain: remembers the headers it was given, then accepts."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.headers = list(scope["headers"])
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


async def test_an_http_request_loses_its_identity_headers_and_keeps_the_rest() -> None:
    inner = Inner()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=StripIdentityHeadersMiddleware(inner)),
        base_url="http://t",
    )
    response = await client.get("/x", headers={**SPOOFED, "X-Other": "kept"})
    assert response.status_code == 204
    assert inner.headers is not None
    names = {name.decode() for name, _ in inner.headers}
    assert "x-other" in names
    assert not any(name.startswith("x-shopstack-") for name in names)


async def test_a_websocket_upgrade_loses_its_identity_headers() -> None:
    inner = Inner()
    handshake = await websocket_handshake(
        StripIdentityHeadersMiddleware(inner), "/ws", headers=[*SPOOFED.items(), ("X-Other", "1")]
    )
    assert handshake.accepted
    assert inner.headers is not None
    names = {name.decode() for name, _ in inner.headers}
    assert "x-other" in names
    assert not any(name.startswith("x-shopstack-") for name in names)


async def test_a_scope_without_identity_headers_keeps_its_header_list() -> None:
    seen: list[Any] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["headers"])

    headers = [(b"host", b"t"), (b"accept", b"*/*")]
    scope = {"type": "http", "path": "/", "headers": headers}

    async def receive() -> dict[str, Any]:
        raise AssertionError("not read")

    async def send(_: Any) -> None:
        raise AssertionError("not sent")

    await StripIdentityHeadersMiddleware(inner)(scope, receive, send)
    assert seen == [headers]
    assert seen[0] is headers  # nothing to remove: no copy on the hot path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/products"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/register"),
        ("GET", "/.well-known/jwks.json"),
        ("POST", "/admin/login"),
    ],
)
async def test_spoofed_identity_headers_never_reach_upstreams_on_public_routes(
    recorded_gateway: httpx.AsyncClient, recorder: Recorder, method: str, path: str
) -> None:
    response = await recorded_gateway.request(method, path, headers=SPOOFED)
    assert response.status_code == 200
    assert not any(name.startswith("x-shopstack-") for name in recorder.seen[-1])


async def test_spoofed_identity_headers_are_replaced_by_the_verified_ones(
    recorded_gateway: httpx.AsyncClient, issuer: Issuer, recorder: Recorder
) -> None:
    user_id = str(uuid.uuid4())
    headers = {**SPOOFED, **issuer.bearer(sub=user_id)}
    response = await recorded_gateway.post("/api/v1/orders", json={}, headers=headers)
    assert response.status_code == 200
    seen = recorder.seen[-1]
    assert seen["x-shopstack-user-id"] == user_id
    assert seen["x-shopstack-roles"] == "customer"
    assert seen["x-shopstack-client-id"] == "web"
    assert "x-shopstack-anything-else" not in seen
