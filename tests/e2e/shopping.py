"""The shopping flow a client goes through, against any base URL that serves the platform:
`make up`'s NGINX (tests/e2e) or the rehearsal's (tests/rehearse)."""

import uuid

import httpx


def sign_in(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    tokens: dict[str, str] = answer.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def register(client: httpx.Client, name: str) -> tuple[dict[str, str], dict[str, str]]:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    password = f"{name} has a long passphrase"
    created = client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "full_name": name}
    )
    assert created.status_code == 201, created.text
    return created.json(), sign_in(client, email, password)


def shop(client: httpx.Client, admin_login: tuple[str, str]) -> None:
    """Register, sign in, products as the admin, an order with an Idempotency-Key and its
    replay, stock, the overview, cancelling, refresh-token rotation, a forged token."""
    admin = bearer(sign_in(client, *admin_login))
    ada, ada_tokens = register(client, "Ada")
    bob, bob_tokens = register(client, "Bob")
    ada_auth, bob_auth = bearer(ada_tokens), bearer(bob_tokens)

    # Catalog writes are for admins. A customer claiming to be one in a header she sets
    # herself is stripped at the gateway and refused by orders.
    kettle = {"sku": f"KETTLE-{uuid.uuid4().hex[:6]}", "name": "Kettle", "price": 2599,
              "currency": "EUR", "stock": 3}  # fmt: skip
    spoofed = client.post(
        "/api/v1/products", json=kettle, headers={**ada_auth, "X-Shopstack-Roles": "admin"}
    )
    assert spoofed.status_code == 403, spoofed.text
    created = client.post("/api/v1/products", json=kettle, headers=admin)
    assert created.status_code == 201, created.text
    product = created.json()
    assert client.get(f"/api/v1/products/{product['id']}").json()["stock"] == 3

    # Ada orders two; the same Idempotency-Key replays instead of ordering again.
    order_in = {"items": [{"product_id": product["id"], "quantity": 2}]}
    key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    placed = client.post("/api/v1/orders", json=order_in, headers={**ada_auth, **key})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["status"], order["total"], order["currency"]) == ("pending", 5198, "EUR")
    replayed = client.post("/api/v1/orders", json=order_in, headers={**ada_auth, **key})
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == order["id"]

    # Two more than are left: 409 naming what is available; nothing was taken.
    short = client.post("/api/v1/orders", json=order_in, headers=bob_auth)
    assert short.status_code == 409, short.text
    assert short.headers["content-type"] == "application/problem+json"
    assert product["id"] in short.text
    assert client.get(f"/api/v1/products/{product['id']}").json()["stock"] == 1

    # Bob cannot see Ada's order (404, not 403); Ada can.
    assert client.get(f"/api/v1/orders/{order['id']}", headers=bob_auth).status_code == 404
    assert client.get(f"/api/v1/orders/{order['id']}", headers=ada_auth).status_code == 200

    # The overview comes from users and orders at once.
    overview = client.get("/api/v1/me/overview", headers=ada_auth)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["missing"] == []
    assert body["profile"]["id"] == ada["id"]
    assert [o["id"] for o in body["orders"]["latest"]] == [order["id"]]
    assert body["orders"]["counts_by_status"]["pending"] == 1

    # Cancelling returns the stock; a cancelled order cannot be paid.
    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=ada_auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert client.get(f"/api/v1/products/{product['id']}").json()["stock"] == 3
    paid = client.post(
        f"/api/v1/orders/{order['id']}/transitions", json={"to": "paid"}, headers=admin
    )
    assert paid.status_code == 409

    # Refresh tokens rotate; presenting a spent one revokes the family.
    refresh = {"grant_type": "refresh_token", "refresh_token": bob_tokens["refresh_token"]}
    rotated = client.post("/api/v1/auth/token", data=refresh)
    assert rotated.status_code == 200, rotated.text
    reused = client.post("/api/v1/auth/token", data=refresh)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    family = {"grant_type": "refresh_token", "refresh_token": rotated.json()["refresh_token"]}
    assert client.post("/api/v1/auth/token", data=family).status_code == 400

    # A forged token never reaches a service.
    forged = ada_tokens["access_token"][:-4] + "AAAA"
    refused = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert client.get("/api/v1/users/me", headers=bob_auth).json()["id"] == bob["id"]
