import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shopstack_common.identity import Identity
from shopstack_devstack.ports import free_port
from shopstack_orders.config import OrdersSettings
from shopstack_orders.main import create_app

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
ProductFactory = Callable[..., Awaitable[dict[str, Any]]]


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


@pytest.fixture
def make_client(database_url: str, redis_url: str) -> ClientFactory:
    """An HTTP client for an orders app on the test servers, its lifespan running."""

    @asynccontextmanager
    async def make(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        values: dict[str, object] = {
            "environment": "test", "database_url": database_url, "redis_url": redis_url,
            # Each test starts empty; a periodic purge would only add noise to it.
            "idempotency_purge_interval_seconds": 0,
        }  # fmt: skip
        app = create_app(OrdersSettings(**(values | overrides)))  # type: ignore[arg-type]
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

    async def make(**fields: Any) -> dict[str, Any]:
        body = {
            "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            "name": "Green tea",
            "price": 450,
            "currency": "EUR",
            "stock": 10,
        } | fields
        response = await client.post("/api/v1/products", json=body, headers=admin)
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    return make


OrderPlacer = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def place(client: httpx.AsyncClient) -> OrderPlacer:
    """POST an order: ``await place(headers, (product, quantity), ..., key=None)``."""

    async def send(
        headers: dict[str, str],
        *lines: tuple[dict[str, Any], int],
        key: str | None = None,
        via: httpx.AsyncClient | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {"items": [{"product_id": p["id"], "quantity": q} for p, q in lines]} | extra
        if key is not None:
            headers = headers | {"Idempotency-Key": key}
        return await (via or client).post("/api/v1/orders", json=body, headers=headers)

    return send


MetricReader = Callable[..., Awaitable[float]]


@pytest.fixture
def metric(client: httpx.AsyncClient) -> MetricReader:
    """A sample from the app's own /metrics (0 while the series does not exist yet)."""

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
