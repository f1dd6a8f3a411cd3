"""shopstack's load generator: the journeys its clients take, weighted as a shop's traffic is
(mostly browsing, some buying, a rare admin).

Every request carries ``X-Synthetic-Source: load``: the gateway puts ``synthetic`` on its
access log line and counts it in ``shopstack_gateway_synthetic_requests_total``. Requests are
named ``<journey>: <step>``, so Locust's statistics read by journey.

Settings (environment): ``LOAD_THINK_MIN`` / ``LOAD_THINK_MAX`` seconds between a user's steps
(1 and 5), ``LOAD_ADMIN_EMAIL`` / ``LOAD_ADMIN_PASSWORD`` (`make up`'s development admin).
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import HttpUser, between, task

SYNTHETIC = {"X-Synthetic-Source": "load"}
THINK = between(
    float(os.environ.get("LOAD_THINK_MIN", "1")), float(os.environ.get("LOAD_THINK_MAX", "5"))
)
ADMIN_EMAIL = os.environ.get("LOAD_ADMIN_EMAIL", "admin@shopstack.local")
ADMIN_PASSWORD = os.environ.get("LOAD_ADMIN_PASSWORD", "shopstack-dev-admin")
SEARCH_TERMS = ("kettle", "lamp", "mug", "load", "tea")
# The products the admin journey makes and restocks, found by the shoppers by this prefix.
LOAD_SKU = "LOAD-"


def _bearer(token: str) -> dict[str, str]:
    return {**SYNTHETIC, "Authorization": f"Bearer {token}"}


class ShopUser(HttpUser):
    abstract = True
    wait_time = THINK

    def on_start(self) -> None:
        self.client.headers.update(SYNTHETIC)

    def sign_in(self, email: str, password: str, journey: str) -> str | None:
        form = {"grant_type": "password", "username": email, "password": password}
        with self.client.post("/api/v1/auth/token", data=form, name=f"{journey}: sign in",
                              catch_response=True) as answer:  # fmt: skip
            if answer.status_code != 200:
                answer.failure(f"sign-in answered {answer.status_code}")
                return None
            token: str = answer.json()["access_token"]
            return token

    def load_products(self, journey: str) -> list[dict[str, Any]]:
        answer = self.client.get(
            "/api/v1/products",
            params={"q": LOAD_SKU, "limit": 20},
            name=f"{journey}: find products",
        )
        if answer.status_code != 200:
            return []
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


class Browser(ShopUser):
    """Browses and searches the catalogue without signing in: most of a shop's traffic."""

    weight = 6

    @task(3)
    def browse(self) -> None:
        page = self.client.get("/api/v1/products", params={"limit": 20}, name="browse: list")
        if page.status_code == 200 and page.json()["items"]:
            product = random.choice(page.json()["items"])  # noqa: S311 - traffic shape
            self.client.get(f"/api/v1/products/{product['id']}", name="browse: product")

    @task(1)
    def search(self) -> None:
        term = random.choice(SEARCH_TERMS)  # noqa: S311
        self.client.get(
            "/api/v1/products", params={"q": term, "limit": 20}, name="search: products"
        )


class Shopper(ShopUser):
    """Registers, signs in, orders with an Idempotency-Key (resent with the same key after a
    5xx or a lost connection, as a careful client does), reads the overview, cancels some."""

    weight = 3

    def on_start(self) -> None:
        super().on_start()
        self.email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        self.password = f"load passphrase {uuid.uuid4().hex[:8]}"
        account = {"email": self.email, "password": self.password, "full_name": "Load Shopper"}
        self.client.post("/api/v1/auth/register", json=account, name="register: account")
        self.token = self.sign_in(self.email, self.password, "register") or ""
        self.orders: list[str] = []

    @task(4)
    def place_order(self) -> None:
        products = [p for p in self.load_products("order") if p["stock"] > 0]
        if not products or not self.token:
            return
        product = random.choice(products)  # noqa: S311
        body = {"items": [{"product_id": product["id"], "quantity": random.randint(1, 3)}]}  # noqa: S311
        headers = {**_bearer(self.token), "Idempotency-Key": f'"{uuid.uuid4()}"'}
        for _attempt in range(3):
            with self.client.post("/api/v1/orders", json=body, headers=headers,
                                  name="order: place", catch_response=True) as answer:  # fmt: skip
                if answer.status_code == 201:
                    self.orders.append(answer.json()["id"])
                    return
                if "out-of-stock" in answer.text:
                    answer.success()  # sold out meanwhile: a shop's normal answer
                    return
                if answer.status_code < 500 and answer.status_code != 0:
                    answer.failure(f"order answered {answer.status_code}: {answer.text[:200]}")
                    return

    @task(3)
    def overview(self) -> None:
        if self.token:
            self.client.get(
                "/api/v1/me/overview", headers=_bearer(self.token), name="overview: read"
            )

    @task(1)
    def cancel(self) -> None:
        if self.orders and self.token:
            order = self.orders.pop(0)
            self.client.post(f"/api/v1/orders/{order}/cancel", headers=_bearer(self.token),
                             name="cancel: order")  # fmt: skip

    @task(1)
    def sign_in_again(self) -> None:
        self.token = self.sign_in(self.email, self.password, "sign in") or self.token


class Admin(ShopUser):
    """Keeps the load's products in stock: rare, and one at a time."""

    weight = 1
    fixed_count = 1

    def on_start(self) -> None:
        super().on_start()
        self.token = self.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "admin") or ""
        if self.token and len(self.load_products("admin")) < 5:
            for number in range(5):
                product = {"sku": f"{LOAD_SKU}{uuid.uuid4().hex[:8].upper()}",
                           "name": f"Load kettle {number}", "price": 1999, "currency": "EUR",
                           "stock": 500}  # fmt: skip
                self.client.post("/api/v1/products", json=product, headers=_bearer(self.token),
                                 name="admin: add product")  # fmt: skip

    @task
    def restock(self) -> None:
        products = self.load_products("admin")
        if not self.token or not products:
            return
        lowest = min(products, key=lambda product: product["stock"])
        if lowest["stock"] < 1000:
            self.client.post(f"/api/v1/products/{lowest['id']}/restock", json={"quantity": 100},
                             headers=_bearer(self.token), name="admin: restock")  # fmt: skip
