"""The gateway in front of the real users and orders apps, on the real PostgreSQL and Redis.

users runs under a threaded WSGI server and orders under uvicorn, both on loopback, each behind
a tap that records the headers it received: what an upstream really saw is the evidence for
the header rules.

Tokens here are signed with the test key that ``jwks_url`` publishes, so a test can ask for
any claims; the gateway's verification is the real one. ``test_real_tokens.py`` uses tokens
from users' own token endpoint and its JWKS instead.
"""

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import uvicorn
from werkzeug.serving import make_server

from shopstack_common.asgi import ASGIApp, Receive, Scope, Send
from shopstack_devstack.ports import free_port
from shopstack_orders.config import OrdersSettings
from shopstack_orders.main import create_app as create_orders_app
from shopstack_users.config import UsersSettings
from shopstack_users.main import create_app as create_users_app
from shopstack_users.resources import resources as users_resources

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


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
    def __init__(self, app: Any) -> None:
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

    async def start(self) -> None:
        self.tap = AsgiTap(create_orders_app(self.settings))
        config = uvicorn.Config(
            self.tap, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
            lifespan="on",
        )  # fmt: skip
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


@pytest.fixture
async def orders(database_url: str, redis_url: str) -> AsyncIterator[OrdersServer]:
    server = OrdersServer(
        OrdersSettings(environment="test", database_url=database_url, redis_url=redis_url)  # type: ignore[arg-type]
    )
    await server.start()
    yield server
    if server._task is not None and not server._task.done():
        await server.stop()


@pytest.fixture
def users(database_url: str, redis_url: str) -> Iterator[tuple[str, WsgiTap]]:
    app = create_users_app(
        UsersSettings(environment="test", database_url=database_url, redis_url=redis_url)  # type: ignore[arg-type]
    )
    tap = WsgiTap(app)
    server = make_server("127.0.0.1", free_port(), tap, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", tap
    server.shutdown()
    thread.join(10)
    users_resources(app).close()


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory,
    orders: OrdersServer,
    users: tuple[str, WsgiTap],
    redis_url: str,
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_gateway(
        {"users": users[0], "orders": orders.url},
        redis_url=redis_url,
        upstream_options={"breaker": {"failure_threshold": 3, "open_seconds": 0.5}},
    ) as client:
        yield client


@pytest.fixture
def access_token(issuer: Any) -> Callable[..., dict[str, str]]:
    """Bearer headers for a caller; see the module docstring for where tokens come from."""

    def obtain(**claims: Any) -> dict[str, str]:
        headers: dict[str, str] = issuer.bearer(**claims)
        return headers

    return obtain


SPOOFED = {"X-Shopstack-User-Id": str(uuid.uuid4()), "X-Shopstack-Roles": "admin"}
PRODUCT = {"sku": "KETTLE-1", "name": "Kettle", "price": 2599, "currency": "EUR", "stock": 3}


def identity_headers(seen: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in seen.items() if k.startswith("x-shopstack-")}


async def test_register_through_the_gateway_reaches_users_without_spoofed_identity(
    gateway: httpx.AsyncClient, users: tuple[str, WsgiTap]
) -> None:
    response = await gateway.post(
        "/api/v1/auth/register",
        json={"email": "Ada@Example.com", "password": "a long enough secret", "full_name": "Ada"},
        headers={**SPOOFED, "X-Request-ID": "register-1"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "ada@example.com"
    assert response.headers["x-request-id"] == "register-1"
    seen = users[1].seen[-1]
    assert identity_headers(seen) == {}
    assert seen["x-request-id"] == "register-1"
    assert seen["x-forwarded-for"] == "203.0.113.9"


async def test_users_validation_problem_passes_through_unchanged(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post("/api/v1/auth/register", json={"email": "nope"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == {"email", "password", "full_name"}


async def test_creating_a_product_needs_a_token_and_carries_the_identity(
    gateway: httpx.AsyncClient, orders: OrdersServer, access_token: Callable[..., dict[str, str]]
) -> None:
    refused = await gateway.post("/api/v1/products", json=PRODUCT, headers=SPOOFED)
    assert refused.status_code == 401
    assert orders.seen == []

    admin_id = str(uuid.uuid4())
    created = await gateway.post(
        "/api/v1/products",
        json=PRODUCT,
        headers={**SPOOFED, **access_token(sub=admin_id, roles=["admin"])},
    )
    assert created.status_code == 201, created.text
    seen = identity_headers(orders.seen[-1])
    assert seen["x-shopstack-user-id"] == admin_id
    assert seen["x-shopstack-roles"] == "admin"
    assert seen["x-shopstack-client-id"] == "web"

    conflict = await gateway.post(
        "/api/v1/products", json=PRODUCT, headers=access_token(roles=["admin"])
    )
    assert conflict.status_code == 409  # orders' own problem, unchanged
    assert conflict.json()["errors"][0]["field"] == "sku"


async def test_product_reads_are_public_and_see_no_spoofed_identity(
    gateway: httpx.AsyncClient, orders: OrdersServer, access_token: Callable[..., dict[str, str]]
) -> None:
    created = await gateway.post(
        "/api/v1/products", json=PRODUCT, headers=access_token(roles=["admin"])
    )
    product_id = created.json()["id"]
    for _ in range(2):  # the second read comes from orders' cache
        read = await gateway.get(f"/api/v1/products/{product_id}", headers=SPOOFED)
        assert read.status_code == 200
        assert read.json()["name"] == "Kettle"
        assert identity_headers(orders.seen[-1]) == {}
        assert read.headers["ratelimit-policy"].startswith('"address"')
    missing = await gateway.get(f"/api/v1/products/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_stopped_orders_opens_the_breaker_and_recovery_closes_it(
    gateway: httpx.AsyncClient, orders: OrdersServer, access_token: Callable[..., dict[str, str]]
) -> None:
    created = await gateway.post(
        "/api/v1/products", json=PRODUCT, headers=access_token(roles=["admin"])
    )
    path = f"/api/v1/products/{created.json()['id']}"
    assert (await gateway.get(path)).status_code == 200

    await orders.stop()
    first = await gateway.get(path)
    assert first.status_code == 502  # three tries, then the breaker opens
    refused = await gateway.get(path)
    assert refused.status_code == 503
    assert refused.json()["type"].endswith("/upstream-circuit-open")
    assert "retry-after" in refused.headers
    # users is not affected by orders' breaker.
    assert (await gateway.get("/.well-known/jwks.json")).status_code != 503

    await orders.start()
    await asyncio.sleep(0.6)  # the open period passes; the next request is the probe
    assert (await gateway.get(path)).status_code == 200
    assert (await gateway.get(path)).status_code == 200


async def test_merged_openapi_of_the_real_services(gateway: httpx.AsyncClient) -> None:
    document = (await gateway.get("/openapi.json")).json()
    assert "x-shopstack-missing" not in document
    paths = document["paths"]
    assert "post" in paths["/api/v1/auth/register"]
    assert "security" not in paths["/api/v1/auth/register"]["post"]
    assert paths["/api/v1/products"]["post"]["security"] == [{"OAuth2Password": []}]
    assert not any(p in paths for p in ("/healthz", "/readyz", "/metrics"))
    assert "/api/v1/me/overview" in paths


async def test_readyz_sees_both_real_upstreams_and_redis(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/readyz")
    assert response.status_code == 200, response.text
    assert set(response.json()["checks"]) == {"users", "orders", "redis"}
