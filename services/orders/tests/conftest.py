import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shopstack_common.identity import Identity
from shopstack_devstack.ports import free_port
from shopstack_orders.config import OrdersSettings
from shopstack_orders.main import create_app

Headers = dict[str, str]
Json = dict[str, Any]


class ClientFactory(Protocol):
    """An HTTP client for an orders app of its own: ``async with make_client(**settings)``."""

    def __call__(self, **overrides: object) -> AbstractAsyncContextManager[httpx.AsyncClient]: ...


class ProductFactory(Protocol):
    """A product created by an administrator: ``await make_product(stock=3)``."""

    async def __call__(self, **fields: object) -> Json: ...


class OrderPlacer(Protocol):
    """``await place(headers, (product, quantity), ..., key=None)``: the POST's response."""

    async def __call__(
        self,
        headers: Headers,
        *lines: tuple[Json, int],
        key: str | None = None,
        via: httpx.AsyncClient | None = None,
        **extra: object,
    ) -> httpx.Response: ...


class MetricReader(Protocol):
    """A sample from the app's own /metrics (0 while the series does not exist yet)."""

    async def __call__(self, name: str, **labels: str) -> float: ...


# Fixed ids, so a failing assertion names a recognisable caller.
ADMIN = Identity(
    user_id=uuid.UUID("00000000-0000-4000-8000-00000000000a"),
    client_id="web",
    roles=frozenset({"admin"}),
)
ALICE = Identity(
    user_id=uuid.UUID("00000000-0000-4000-8000-0000000000a1"),
    client_id="web",
    roles=frozenset({"customer"}),
)
BOB = Identity(
    user_id=uuid.UUID("00000000-0000-4000-8000-0000000000b0"),
    client_id="web",
    roles=frozenset({"customer"}),
)


# Identity headers as the gateway sends them for a verified token.
@pytest.fixture
def admin() -> dict[str, str]:
    return ADMIN.to_headers()


@pytest.fixture
def alice() -> dict[str, str]:
    return ALICE.to_headers()


@pytest.fixture
def bob() -> dict[str, str]:
    return BOB.to_headers()


class SettingsFactory(Protocol):
    def __call__(self, **overrides: object) -> OrdersSettings: ...


@pytest.fixture
def make_settings(database_url: str, redis_url: str) -> SettingsFactory:
    """Settings for an orders app on the test servers; ``overrides`` by field name."""

    def make(**overrides: object) -> OrdersSettings:
        values: dict[str, object] = {
            "environment": "test",
            "database_url": database_url,
            "redis_url": redis_url,
            # Each test starts empty; a periodic purge would only add noise to it.
            "idempotency_purge_interval_seconds": 0,
        }
        return OrdersSettings.model_validate(values | overrides)

    return make


@pytest.fixture
def make_client(make_settings: SettingsFactory) -> ClientFactory:
    """An HTTP client for an orders app on the test servers, its lifespan running."""

    @asynccontextmanager
    async def make(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(**overrides))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://orders", timeout=30
            ) as client,
        ):
            yield client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


@pytest.fixture
def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def make_product(client: httpx.AsyncClient, admin: dict[str, str]) -> ProductFactory:
    """Create a product as an administrator; fields default to a unique, orderable one."""

    async def make(**fields: object) -> Json:
        body = {
            "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            "name": "Green tea",
            "price": 450,
            "currency": "EUR",
            "stock": 10,
        } | fields
        response = await client.post("/api/v1/products", json=body, headers=admin)
        assert response.status_code == 201, response.text
        product: Json = response.json()
        return product

    return make


@pytest.fixture
def place(client: httpx.AsyncClient) -> OrderPlacer:
    async def send(
        headers: Headers,
        *lines: tuple[Json, int],
        key: str | None = None,
        via: httpx.AsyncClient | None = None,
        **extra: object,
    ) -> httpx.Response:
        body = {"items": [{"product_id": p["id"], "quantity": q} for p, q in lines]} | extra
        if key is not None:
            headers = headers | {"Idempotency-Key": key}
        return await (via or client).post("/api/v1/orders", json=body, headers=headers)

    return send


@pytest.fixture
def metric(client: httpx.AsyncClient) -> MetricReader:
    async def read(name: str, **labels: str) -> float:
        text = (await client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    return read
