"""Gateway tests: upstreams are small aiohttp apps on loopback (the gateway's client is aiohttp),
tokens are signed with a key made per test and published by an in-process JWKS server.

Nothing here imports users or orders: the gateway's contract with them is HTTP. Tests that run
the gateway in front of the real services live in ``tests/integration/`` at the root.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest
import uvicorn
from aiohttp import web

from shopstack_common.asgi import ASGIApp, Message
from shopstack_devstack.ports import free_port
from shopstack_devstack.tokens import TokenIssuer
from shopstack_gateway.config import GatewaySettings, UpstreamSettings
from shopstack_gateway.main import GatewayApp, create_app

CLIENT_ADDRESS = "203.0.113.9"
PUBLIC_HOST = "shop.example"


def _refusing_port() -> int:
    """A loopback port bound for the whole run and never listened on: connecting to it is
    refused at once, and nothing else on the machine (it may be shared) can listen there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _HELD_SOCKETS.append(sock)
    port: int = sock.getsockname()[1]
    return port


_HELD_SOCKETS: list[socket.socket] = []
_REFUSING_PORT = _refusing_port()
# Where nothing answers: an upstream, a JWKS or a Redis that is down.
NOWHERE = f"http://127.0.0.1:{_REFUSING_PORT}"
DEAD_REDIS = f"redis://127.0.0.1:{_REFUSING_PORT}/0"


@pytest.fixture(scope="session", autouse=True)
def _release_the_refusing_port() -> Iterator[None]:
    yield
    for sock in _HELD_SOCKETS:
        sock.close()


class UpstreamServer(Protocol):
    """Serves an aiohttp app on a loopback port (a given one, or a free one); yields its URL."""

    def __call__(
        self, app: web.Application, port: int | None = None
    ) -> AbstractAsyncContextManager[str]: ...


class GatewayFactory(Protocol):
    """A gateway (lifespan running) in front of upstream URLs by name, trusting ``issuer``;
    ``overrides`` are settings, and ``upstream_options`` (retry, breaker, timeouts) apply to
    every upstream."""

    def __call__(
        self, upstreams: Mapping[str, str], **overrides: Any
    ) -> AbstractAsyncContextManager[httpx.AsyncClient]: ...


class GatewayAppFactory(Protocol):
    """Like ``GatewayFactory``, yielding the ASGI app itself (for WebSocket scopes)."""

    def __call__(
        self, upstreams: Mapping[str, str], **overrides: Any
    ) -> AbstractAsyncContextManager[GatewayApp]: ...


@asynccontextmanager
async def serve(app: web.Application, port: int | None = None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def serve_upstream() -> UpstreamServer:
    return serve


@asynccontextmanager
async def serve_with_uvicorn(app: ASGIApp) -> AsyncIterator[str]:
    """Serve an ASGI app (its lifespan too) under uvicorn on a loopback port; yields
    ``127.0.0.1:<port>``."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class Recorder:
    """An upstream that answers 200 and remembers the headers of every request it got. A
    WebSocket upgrade is accepted, told its path and query, and closed with 4000."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.StreamResponse:
            self.seen.append({k.lower(): v for k, v in request.headers.items()})
            if request.headers.get("Upgrade", "").lower() == "websocket":
                socket = web.WebSocketResponse()
                await socket.prepare(request)
                await socket.send_json({"path": request.path, "query": request.query_string})
                await socket.close(code=4000, message=b"done")
                return socket
            return web.json_response({"path": request.path})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def recorded_gateway(
    make_gateway: GatewayFactory, recorder: Recorder
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose upstreams are one ``recorder``."""
    async with (
        serve(recorder.app()) as upstream,
        make_gateway({"users": upstream, "orders": upstream}) as client,
    ):
        yield client


@dataclass
class Issuer(TokenIssuer):
    """The token issuer, with its JWKS served the way users serves it; counts the fetches."""

    extra_keys: list[dict[str, str]] = field(default_factory=list)
    fetches: int = 0
    max_age: int = 300

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [*super().jwks["keys"], *self.extra_keys]}

    def app(self) -> web.Application:
        async def jwks(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(
                self.jwks, headers={"Cache-Control": f"public, max-age={self.max_age}"}
            )

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", jwks)
        return app


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
async def jwks_url(issuer: Issuer) -> AsyncIterator[str]:
    async with serve(issuer.app()) as base:
        yield base + "/.well-known/jwks.json"


def gateway_settings(
    upstreams: Mapping[str, str],
    *,
    read_timeout_seconds: float = 5.0,
    upstream_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> GatewaySettings:
    values: dict[str, Any] = {
        # Nothing listens here: unit tests run the limiter's fail-open path. Rate limiting
        # itself is tested on the real Redis (test_ratelimit.py, middleware/test_rate_limit.py).
        "redis_url": DEAD_REDIS,
        "upstreams": {
            name: UpstreamSettings(
                url=url, read_timeout_seconds=read_timeout_seconds, **(upstream_options or {})
            )
            for name, url in upstreams.items()
        },
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def running_app(settings: GatewaySettings) -> AsyncIterator[GatewayApp]:
    app = create_app(settings)
    async with app.api.router.lifespan_context(app.api):
        yield app


def client_of(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 5555)),
        base_url=f"http://{PUBLIC_HOST}",
    )


@pytest.fixture
def make_gateway_app(jwks_url: str) -> GatewayAppFactory:
    @asynccontextmanager
    async def make(upstreams: Mapping[str, str], **overrides: Any) -> AsyncIterator[GatewayApp]:
        overrides.setdefault("jwks_url", jwks_url)
        async with running_app(gateway_settings(upstreams, **overrides)) as app:
            yield app

    return make


@pytest.fixture
def make_gateway(make_gateway_app: GatewayAppFactory) -> GatewayFactory:
    @asynccontextmanager
    async def make(
        upstreams: Mapping[str, str], **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        async with make_gateway_app(upstreams, **overrides) as app, client_of(app) as client:
            yield client

    return make


# -- WebSocket handshakes, driven through ASGI ---------------------------------------------


@dataclass
class Handshake:
    """What an app sent in answer to a WebSocket upgrade."""

    messages: list[Message]

    @property
    def first(self) -> Message:
        assert self.messages, "the app sent nothing"
        return self.messages[0]

    @property
    def accepted(self) -> bool:
        return bool(self.first["type"] == "websocket.accept")

    @property
    def status(self) -> int:
        """The HTTP status of a Denial Response (``websocket.http.response.start``)."""
        assert self.first["type"] == "websocket.http.response.start", self.first
        status: int = self.first["status"]
        return status

    @property
    def close_code(self) -> int:
        assert self.first["type"] == "websocket.close", self.first
        code: int = self.first["code"]
        return code

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.first.get("headers", [])}

    def json(self) -> Any:
        import json

        body = b"".join(m.get("body", b"") for m in self.messages[1:])
        return json.loads(body)


def websocket_scope(
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    denial_response: bool = True,
    client: str = CLIENT_ADDRESS,
) -> dict[str, Any]:
    """The scope of a WebSocket upgrade as a server hands it on, from a server that supports
    the Denial Response extension or from one that does not."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": (PUBLIC_HOST, 80),
        "client": (client, 5555),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", PUBLIC_HOST.encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers),
        ],
        "subprotocols": [],
        "state": {},
        "extensions": {"websocket.http.response": {}} if denial_response else {},
    }


async def websocket_handshake(
    app: ASGIApp,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    denial_response: bool = True,
    client: str = CLIENT_ADDRESS,
) -> Handshake:
    """Open a WebSocket to ``app`` the way a server does (``websocket_scope``); the connection
    ends as soon as the app answers the handshake."""
    scope = websocket_scope(path, headers=headers, denial_response=denial_response, client=client)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[Message] = []

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    await asyncio.wait_for(app(scope, receive, send), 10)
    return Handshake(sent)
