"""The gateway trusting the real users service: tokens from its token endpoint, keys from its
JWKS, the overview assembled from the real users and orders apps. Real PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from shopstack_users.cli import bootstrap_admin
from shopstack_users.keys import write_new_key

from .conftest import GatewayFactory, OrdersServer, UsersServer, identity_headers, users_settings

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "a very long admin passphrase"


@pytest.fixture
def signing_users(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[UsersServer]:
    """The real users app, signing with a key of its own."""
    keys = tmp_path / "keys"
    write_new_key(keys, "2026-11-01")
    settings = users_settings(
        database_url,
        redis_url,
        jwt_signing_keys_dir=keys,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
    )
    bootstrap_admin(settings)
    server = UsersServer(settings)
    yield server
    server.stop()


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, signing_users: UsersServer, orders: OrdersServer
) -> AsyncIterator[httpx.AsyncClient]:
    # The gateway reads users' own JWKS: no test key anywhere on this path.
    async with make_gateway(
        {"users": signing_users.url, "orders": orders.url},
        jwks_url=f"{signing_users.url}/.well-known/jwks.json",
    ) as client:
        yield client


async def sign_in(gateway: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    answer = await gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def register(gateway: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = f"c-{uuid.uuid4().hex[:8]}@example.com"
    password = "customer passphrase long"
    created = await gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "C"}
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], await sign_in(gateway, email, password)


async def test_a_users_token_is_verified_and_its_identity_forwarded(
    gateway: httpx.AsyncClient, orders: OrdersServer
) -> None:
    admin = await sign_in(gateway, ADMIN_EMAIL, ADMIN_PASSWORD)
    created = await gateway.post(
        "/api/v1/products",
        json={"sku": "REAL-1", "name": "Teapot", "price": 1500, "currency": "EUR", "stock": 5},
        headers={**admin, "X-Shopstack-Roles": "customer"},  # a client's header never counts
    )
    assert created.status_code == 201, created.text
    seen = identity_headers(orders.seen[-1])
    assert set(seen["x-shopstack-roles"].split(",")) == {"admin", "customer"}
    assert seen["x-shopstack-client-id"] == "shopstack-web"

    customer_id, customer = await register(gateway)
    me = await gateway.get("/api/v1/users/me", headers=customer)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == customer_id
    refused = await gateway.post(
        "/api/v1/products",
        json={"sku": "REAL-2", "name": "x", "price": 1, "currency": "EUR", "stock": 1},
        headers=customer,
    )
    assert refused.status_code == 403


async def test_a_tampered_users_token_is_refused_before_any_upstream(
    gateway: httpx.AsyncClient, orders: OrdersServer
) -> None:
    _, customer = await register(gateway)
    token = customer["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload[:-2]}AA.{signature}"
    before = len(orders.seen)
    answer = await gateway.get("/api/v1/orders", headers={"Authorization": f"Bearer {tampered}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert len(orders.seen) == before


async def test_the_overview_from_the_real_services(
    gateway: httpx.AsyncClient, orders: OrdersServer
) -> None:
    admin = await sign_in(gateway, ADMIN_EMAIL, ADMIN_PASSWORD)
    product = await gateway.post(
        "/api/v1/products",
        json={"sku": "REAL-3", "name": "Mug", "price": 900, "currency": "EUR", "stock": 10},
        headers=admin,
    )
    customer_id, customer = await register(gateway)
    line = {"items": [{"product_id": product.json()["id"], "quantity": 1}]}
    placed = [await gateway.post("/api/v1/orders", json=line, headers=customer) for _ in range(6)]
    assert all(p.status_code == 201 for p in placed), [p.text for p in placed]
    cancelled = await gateway.post(
        f"/api/v1/orders/{placed[0].json()['id']}/cancel", headers=customer
    )
    assert cancelled.status_code == 200

    overview = await gateway.get("/api/v1/me/overview", headers=customer)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["missing"] == []
    assert body["profile"]["id"] == customer_id
    newest_first = [p.json()["id"] for p in reversed(placed)][:5]
    assert [o["id"] for o in body["orders"]["latest"]] == newest_first
    assert body["orders"]["counts_by_status"]["pending"] == 5
    assert body["orders"]["counts_by_status"]["cancelled"] == 1
    assert body["orders"]["total"] == 6

    # orders gone: still 200, with the profile and a note of what is missing.
    await orders.stop()
    degraded = await gateway.get("/api/v1/me/overview", headers=customer)
    assert degraded.status_code == 200, degraded.text
    body = degraded.json()
    assert body["profile"]["id"] == customer_id
    assert body["orders"] is None
    assert [m["part"] for m in body["missing"]] == ["orders"]
    await orders.start()
