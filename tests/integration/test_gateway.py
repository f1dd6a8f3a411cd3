"""The gateway in front of the real users and orders apps (see ``conftest.py``): identity
headers, token requirements, problems passing through, the breaker, the merged document,
readiness, redirects and traces."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from shopstack_common.logs import configure_logging
from shopstack_devstack.tokens import TokenIssuer

from .conftest import GatewayFactory, OrdersServer, UsersServer, identity_headers


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, orders: OrdersServer, users: UsersServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_gateway(
        {"users": users.url, "orders": orders.url},
        upstream_options={"breaker": {"failure_threshold": 3, "open_seconds": 0.5}},
    ) as client:
        yield client


SPOOFED = {"X-Shopstack-User-Id": str(uuid.uuid4()), "X-Shopstack-Roles": "admin"}
PRODUCT = {"sku": "KETTLE-1", "name": "Kettle", "price": 2599, "currency": "EUR", "stock": 3}


async def test_register_through_the_gateway_reaches_users_without_spoofed_identity(
    gateway: httpx.AsyncClient, users: UsersServer
) -> None:
    response = await gateway.post(
        "/api/v1/auth/register",
        json={"email": "Ada@Example.com", "password": "a long enough secret", "full_name": "Ada"},
        headers={**SPOOFED, "X-Request-ID": "register-1"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "ada@example.com"
    assert response.headers["x-request-id"] == "register-1"
    seen = users.seen[-1]
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
    gateway: httpx.AsyncClient, orders: OrdersServer, issuer: TokenIssuer
) -> None:
    refused = await gateway.post("/api/v1/products", json=PRODUCT, headers=SPOOFED)
    assert refused.status_code == 401
    assert orders.seen == []

    admin_id = str(uuid.uuid4())
    created = await gateway.post(
        "/api/v1/products",
        json=PRODUCT,
        headers={**SPOOFED, **issuer.bearer(sub=admin_id, roles=["admin"])},
    )
    assert created.status_code == 201, created.text
    seen = identity_headers(orders.seen[-1])
    assert seen["x-shopstack-user-id"] == admin_id
    assert seen["x-shopstack-roles"] == "admin"
    assert seen["x-shopstack-client-id"] == "web"

    conflict = await gateway.post(
        "/api/v1/products", json=PRODUCT, headers=issuer.bearer(roles=["admin"])
    )
    assert conflict.status_code == 409  # orders' own problem, unchanged
    assert conflict.json()["errors"][0]["field"] == "sku"


async def test_product_reads_are_public_and_see_no_spoofed_identity(
    gateway: httpx.AsyncClient, orders: OrdersServer, issuer: TokenIssuer
) -> None:
    created = await gateway.post(
        "/api/v1/products", json=PRODUCT, headers=issuer.bearer(roles=["admin"])
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
    gateway: httpx.AsyncClient, orders: OrdersServer, issuer: TokenIssuer
) -> None:
    created = await gateway.post(
        "/api/v1/products", json=PRODUCT, headers=issuer.bearer(roles=["admin"])
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


async def test_readiness_is_about_the_gateway_not_the_upstreams(
    gateway: httpx.AsyncClient, orders: OrdersServer
) -> None:
    response = await gateway.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {"signing_keys", "upstream_users", "upstream_orders", "redis"}
    await orders.stop()
    # orders gone: the gateway still serves users' routes, so it stays ready.
    assert (await gateway.get("/readyz")).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/products/", "/api/v1/orders/"])
async def test_a_trailing_slash_on_orders_names_no_internal_address(
    gateway: httpx.AsyncClient, orders: OrdersServer, issuer: TokenIssuer, path: str
) -> None:
    # orders does not redirect (a trailing slash is not a route of its); the gateway's rewrite
    # of an upstream's own Location is tested against a fake upstream that does redirect.
    response = await gateway.get(path, headers=issuer.bearer())
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert str(orders.port) not in str(response.headers)


async def test_redirects_of_users_name_no_internal_address(
    gateway: httpx.AsyncClient, users: UsersServer, issuer: TokenIssuer
) -> None:
    # Whatever users answers to these (a redirect or not), no header names its address.
    for path in ("/api/v1/users/me/", "/api/v1/auth/token/", "/.well-known/jwks.json/"):
        response = await gateway.get(path, headers=issuer.bearer())
        assert users.url.removeprefix("http://") not in str(response.headers), path


async def test_the_overview_is_one_trace_across_the_gateway_users_and_orders(
    gateway: httpx.AsyncClient,
    users: UsersServer,
    orders: OrdersServer,
    issuer: TokenIssuer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The three apps share this process and its logging: the JSON lines they write, to the
    # stdout this test reads.
    configure_logging("integration")
    response = await gateway.get("/api/v1/me/overview", headers=issuer.bearer())
    assert response.status_code == 200, response.text
    # The gateway's line, users' and orders' own lines. A service writes its line once the
    # answer has gone out, so it may come a moment after the gateway's.
    expected = {
        "/api/v1/me/overview",
        "/api/v1/users/me",
        "/api/v1/orders",
        "/api/v1/orders/summary",
    }
    access: dict[str, str] = {}
    for _ in range(100):
        for line in capsys.readouterr().out.splitlines():
            record = json.loads(line)
            if record["logger"] == "shopstack.access":
                access[record["path"]] = record["trace_id"]
        if set(access) >= expected:
            break
        await asyncio.sleep(0.05)
    assert set(access) == expected
    traceparents = [users.seen[-1]["traceparent"], orders.seen[-1]["traceparent"]]
    trace_ids = {traceparent.split("-")[1] for traceparent in traceparents}
    assert trace_ids == set(access.values()) == {access["/api/v1/me/overview"]}
