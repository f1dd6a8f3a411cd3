"""The gateway in front of the real users and orders apps, on the real PostgreSQL and Redis.

users runs under a threaded WSGI server and orders under uvicorn, both on loopback, each behind
a tap that records the headers it received: what an upstream really saw is the evidence for
the header rules. Tokens are signed with a test key (``issuer``) that the gateway trusts through
a JWKS served here, so a test can ask for any claims; the gateway's verification is the real
one. ``test_gateway_tokens.py`` uses tokens from users' own token endpoint and JWKS instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import httpx
import pytest
import uvicorn
from aiohttp import web
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from shopstack_common.asgi import ASGIApp, Receive, Scope, Send
from shopstack_devstack.ports import free_port
from shopstack_devstack.tokens import TokenIssuer
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.main import create_app as create_gateway_app
from shopstack_orders.config import OrdersSettings
from shopstack_orders.main import create_app as create_orders_app
from shopstack_users.config import UsersSettings
from shopstack_users.main import create_app as create_users_app
from shopstack_users.resources import resources as users_resources

CLIENT_ADDRESS = "203.0.113.9"


def identity_headers(seen: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in seen.items() if k.startswith("x-shopstack-")}


class AsgiTap:
    """Records the headers of every HTTP request before the app sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


class WsgiTap:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append(
            {
                key[5:].replace("_", "-").lower(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
        )
        return self.app(environ, start_response)


class OrdersServer:
    """The real orders app under uvicorn; can be stopped and started again on its port."""

    def __init__(self, settings: OrdersSettings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tap: AsgiTap | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self.tap = AsgiTap(create_orders_app(self.settings))
        config = uvicorn.Config(
            self.tap,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        assert self._server is not None
        assert self._task is not None
        self._server.should_exit = True
        await self._task

    @property
    def seen(self) -> list[dict[str, str]]:
        assert self.tap is not None
        return self.tap.seen


class UsersServer:
    """The real users app on a threaded WSGI server."""

    def __init__(self, settings: UsersSettings) -> None:
        self.app = create_users_app(settings)
        self.tap = WsgiTap(self.app)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", free_port(), self.tap, threaded=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def seen(self) -> list[dict[str, str]]:
        return self.tap.seen

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(10)
        users_resources(self.app).close()


class GatewayFactory(Protocol):
    """A gateway (lifespan running) in front of upstream URLs by name, on the real Redis,
    trusting ``issuer`` unless ``jwks_url`` says otherwise; ``upstream_options`` apply to every
    upstream, ``overrides`` are settings."""

    def __call__(
        self,
        upstreams: Mapping[str, str],
        *,
        upstream_options: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> AbstractAsyncContextManager[httpx.AsyncClient]: ...


def orders_settings(database_url: str, redis_url: str) -> OrdersSettings:
    return OrdersSettings.model_validate(
        {"environment": "test", "database_url": database_url, "redis_url": redis_url}
    )


def users_settings(database_url: str, redis_url: str, **values: Any) -> UsersSettings:
    return UsersSettings.model_validate(
        {"environment": "test", "database_url": database_url, "redis_url": redis_url, **values}
    )


@pytest.fixture
async def orders(database_url: str, redis_url: str) -> AsyncIterator[OrdersServer]:
    server = OrdersServer(orders_settings(database_url, redis_url))
    await server.start()
    yield server
    if server.running:
        await server.stop()


@pytest.fixture
def users(database_url: str, redis_url: str) -> Iterator[UsersServer]:
    server = UsersServer(users_settings(database_url, redis_url))
    yield server
    server.stop()


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
async def jwks_url(issuer: TokenIssuer) -> AsyncIterator[str]:
    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(issuer.jwks, headers={"Cache-Control": "max-age=300"})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/.well-known/jwks.json"
    await runner.cleanup()


@pytest.fixture
def make_gateway(jwks_url: str, redis_url: str) -> GatewayFactory:
    @asynccontextmanager
    async def make(
        upstreams: Mapping[str, str],
        *,
        upstream_options: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        options = dict(upstream_options or {})
        settings = GatewaySettings.model_validate(
            {
                "redis_url": redis_url,
                "jwks_url": jwks_url,
                "upstreams": {name: {**options, "url": url} for name, url in upstreams.items()},
                **overrides,
            }
        )
        app = create_gateway_app(settings)
        async with (
            app.api.router.lifespan_context(app.api),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 5555)),
                base_url="http://shop.example",
            ) as client,
        ):
            yield client

    return make
