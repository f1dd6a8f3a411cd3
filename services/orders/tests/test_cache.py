"""The product cache on real Redis: hits, invalidation on every write, one rebuild per key
under concurrent misses, and PostgreSQL whenever Redis is down or slow."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from shopstack_common.logs import BurstLogger
from shopstack_devstack.pytest_plugin import FreezableRedis
from shopstack_orders.cache import ProductCache, item_generation_key
from shopstack_orders.deps import resources_of
from shopstack_orders.main import create_app

if TYPE_CHECKING:
    from services.orders.tests.conftest import (
        ClientFactory,
        MetricReader,
        OrderPlacer,
        ProductFactory,
        SettingsFactory,
    )

PRODUCTS = "/api/v1/products"
HITS = "shopstack_orders_cache_hits_total"
MISSES = "shopstack_orders_cache_misses_total"
REBUILDS = "shopstack_orders_cache_rebuilds_total"
UNCACHED = "shopstack_orders_cache_uncached_reads_total"
FALLBACKS = "shopstack_dependency_fallbacks_total"
LOOKUPS = "shopstack_cache_lookups_total"


async def test_reads_are_cached_under_the_orders_prefix_with_a_ttl(
    client: httpx.AsyncClient, make_product: ProductFactory, metric: MetricReader, redis_url: str
) -> None:
    product = await make_product()
    hits = await metric(HITS, kind="product")
    misses = await metric(MISSES, kind="product")
    looked_up = {r: await metric(LOOKUPS, cache="product", result=r) for r in ("hit", "miss")}
    first = await client.get(f"{PRODUCTS}/{product['id']}")
    second = await client.get(f"{PRODUCTS}/{product['id']}")
    assert first.json() == second.json() == product
    assert await metric(MISSES, kind="product") == misses + 1
    assert await metric(HITS, kind="product") == hits + 1
    # The shared cache metric counts the same lookups.
    assert await metric(LOOKUPS, cache="product", result="miss") == looked_up["miss"] + 1
    assert await metric(LOOKUPS, cache="product", result="hit") == looked_up["hit"] + 1
    await client.get(PRODUCTS)
    await client.get(PRODUCTS)
    assert await metric(HITS, kind="product_list") >= 1
    async with redis.asyncio.Redis.from_url(redis_url, decode_responses=True) as r:
        keys = await r.keys("*")
        assert keys
        for key in keys:
            assert isinstance(key, str), key
            assert key.startswith("orders:"), key
            assert await r.ttl(key) > 0, key


async def test_a_missing_product_is_cached_too(
    client: httpx.AsyncClient, metric: MetricReader
) -> None:
    missing = f"{PRODUCTS}/{uuid.uuid4()}"
    hits = await metric(HITS, kind="product")
    assert (await client.get(missing)).status_code == 404
    assert (await client.get(missing)).status_code == 404
    assert await metric(HITS, kind="product") == hits + 1


async def test_every_write_invalidates_what_readers_see(
    *,
    client: httpx.AsyncClient,
    make_product: ProductFactory,
    place: OrderPlacer,
    admin: dict[str, str],
    alice: dict[str, str],
    metric: MetricReader,
) -> None:
    product = await make_product(name="Sencha", stock=10)
    item = f"{PRODUCTS}/{product['id']}"

    async def warm() -> None:
        # Read twice so the second read is surely a cache hit of the current state.
        hits = await metric(HITS, kind="product")
        await client.get(item)
        await client.get(PRODUCTS)
        await client.get(item)
        await client.get(PRODUCTS)
        assert await metric(HITS, kind="product") > hits

    async def seen() -> tuple[dict[str, Any], dict[str, Any]]:
        one = (await client.get(item)).json()
        [listed] = [p for p in (await client.get(PRODUCTS)).json()["items"] if p["id"] == one["id"]]
        return one, listed

    await warm()
    await client.patch(item, json={"name": "Gyokuro"}, headers=admin)
    one, listed = await seen()
    assert one["name"] == listed["name"] == "Gyokuro"

    await warm()
    await client.post(f"{item}/restock", json={"quantity": 5}, headers=admin)
    one, listed = await seen()
    assert one["stock"] == listed["stock"] == 15

    await warm()
    order = (await place(alice, (product, 4))).json()
    one, listed = await seen()
    assert one["stock"] == listed["stock"] == 11

    await warm()
    await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=alice)
    one, listed = await seen()
    assert one["stock"] == listed["stock"] == 15

    await warm()
    newcomer = await make_product(name="Bancha")
    assert newcomer["id"] in [p["id"] for p in (await client.get(PRODUCTS)).json()["items"]]


def product_cache(r: redis.asyncio.Redis, **settings: Any) -> ProductCache:
    """A cache of its own on ``r``, as the app builds one (``settings`` by argument name)."""
    defaults: dict[str, Any] = {
        "ttl_seconds": 60,
        "lock_ttl_ms": 1000,
        "wait_ms": 500,
        "poll_ms": 5,
        "retry_after_seconds": 1,
        "burst_log": BurstLogger(logging.getLogger("t"), quiet_seconds=1),
    }
    return ProductCache(r, **(defaults | settings))


async def test_a_rebuild_that_raced_a_write_is_never_served(
    client: httpx.AsyncClient, make_product: ProductFactory, redis_url: str
) -> None:
    """A reader loads the row, a write commits and invalidates, then the reader stores what it
    loaded: the stale copy must land where no later reader looks."""
    product = await make_product(name="Old name")
    product_id = uuid.UUID(product["id"])
    async with redis.asyncio.Redis.from_url(redis_url, decode_responses=True) as r:
        cache = product_cache(r, ttl_seconds=60, retry_after_seconds=1)

        async def stale_read_then_concurrent_write() -> str:
            await cache.invalidate([product_id])  # the write commits meanwhile
            return "stale"

        async def fresh_read() -> str:
            return "fresh"

        assert await cache.item(product_id, stale_read_then_concurrent_write) == "stale"
        assert await cache.item(product_id, fresh_read) == "fresh"
        assert await cache.item(product_id, fresh_read) == "fresh"


@pytest.fixture
async def two_apps(make_client: ClientFactory) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two processes' worth of app (separate pools and clients) on one Redis and PostgreSQL.

    Redis gets a minute to answer, waiters wait a minute for the lock holder, and the lock
    outlives it, so however slow the machine, each miss either rebuilds or waits for the one
    rebuild. Giving up on the wait is the test below, with a holder slow on purpose, and a
    slow Redis is the section after it."""
    generous = {
        "redis_timeout_seconds": 60.0,
        "product_cache_wait_ms": 60_000,
        "product_cache_lock_ttl_ms": 60_000,
    }
    async with make_client(**generous) as one, make_client(**generous) as two:
        yield [one, two]


@pytest.mark.parametrize("path", ["item", "list"])
async def test_concurrent_misses_rebuild_once(
    two_apps: list[httpx.AsyncClient], make_product: ProductFactory, metric: MetricReader, path: str
) -> None:
    product = await make_product()
    url = f"{PRODUCTS}/{product['id']}" if path == "item" else f"{PRODUCTS}?q=tea"
    kind = "product" if path == "item" else "product_list"
    rebuilds = await metric(REBUILDS, kind=kind)
    uncached = await metric(UNCACHED, kind=kind, reason="lock_wait_expired")
    responses = await asyncio.gather(*(two_apps[i % 2].get(url) for i in range(40)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert await metric(REBUILDS, kind=kind) == rebuilds + 1
    assert await metric(UNCACHED, kind=kind, reason="lock_wait_expired") == uncached


async def test_a_waiter_reads_postgres_when_the_rebuild_outlasts_its_wait(
    make_product: ProductFactory, redis_url: str
) -> None:
    """A holder that takes longer than ``wait_ms`` does not hold its waiters: they read
    PostgreSQL themselves, counted as ``lock_wait_expired``, and store nothing."""
    product_id = uuid.UUID((await make_product())["id"])
    labels = {"kind": "product", "reason": "lock_wait_expired"}

    def expired() -> float:
        return REGISTRY.get_sample_value(UNCACHED, labels) or 0.0

    before = expired()
    building, release = asyncio.Event(), asyncio.Event()
    async with redis.asyncio.Redis.from_url(redis_url, decode_responses=True) as r:
        cache = product_cache(r, wait_ms=50, lock_ttl_ms=60_000)

        async def slow_build() -> str:
            building.set()  # under the lock: the holder builds only once it has taken it
            await release.wait()
            return "from the holder"

        async def own_build() -> str:
            return "read by the waiter"

        holder = asyncio.create_task(cache.item(product_id, slow_build))
        await building.wait()
        assert await cache.item(product_id, own_build) == "read by the waiter"
        assert expired() == before + 1
        release.set()
        assert await holder == "from the holder"
        # The holder's result is what the next reader gets, not the waiter's.
        assert await cache.item(product_id, own_build) == "from the holder"


# -- Redis down or slow -------------------------------------------------------------------------


class Blackhole:
    """A server that accepts connections and never answers: Redis at its slowest."""

    def __init__(self) -> None:
        self.held: list[asyncio.StreamWriter] = []
        self.url = ""

    async def swallow(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held.append(writer)


@pytest.fixture
async def blackhole() -> AsyncIterator[Blackhole]:
    hole = Blackhole()
    server = await asyncio.start_server(hole.swallow, "127.0.0.1", 0)
    hole.url = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    yield hole
    for writer in hole.held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def blackhole_redis_url(blackhole: Blackhole) -> str:
    return blackhole.url


async def test_a_hung_redis_costs_a_read_one_timeout_not_one_per_client_retry(
    make_client: ClientFactory, make_product: ProductFactory, blackhole: Blackhole
) -> None:
    """The back-off decides when Redis is tried again; a client-side retry would reconnect
    and wait out the timeout again, several times over, on the request that met it."""
    product = await make_product()
    async with make_client(redis_url=blackhole.url, redis_retry_after_seconds=60) as degraded:
        read = await degraded.get(f"{PRODUCTS}/{product['id']}")
    assert read.status_code == 200
    assert len(blackhole.held) == 1, f"{len(blackhole.held)} connections for one read"


@pytest.mark.parametrize("failure", ["down", "slow"])
async def test_reads_fall_back_to_postgres_when_redis_fails(
    *,
    client: httpx.AsyncClient,
    make_client: ClientFactory,
    make_product: ProductFactory,
    metric: MetricReader,
    dead_redis_url: str,
    blackhole_redis_url: str,
    failure: str,
) -> None:
    product = await make_product()
    redis_url = dead_redis_url if failure == "down" else blackhole_redis_url
    fallbacks = await metric(FALLBACKS, dependency="redis", operation="products.read")
    uncached = await metric(UNCACHED, kind="product", reason="redis_unavailable")
    fell_back = {
        cache: await metric(LOOKUPS, cache=cache, result="fallback")
        for cache in ("product", "product_list")
    }
    async with make_client(redis_url=redis_url, redis_retry_after_seconds=60) as degraded:
        reads = [await degraded.get(f"{PRODUCTS}/{product['id']}") for _ in range(3)]
        listed = await degraded.get(PRODUCTS)
    assert [r.status_code for r in reads] == [200, 200, 200]
    assert all(r.json() == product for r in reads)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["items"]] == [product["id"]]
    # One failure is paid for; the next reads skip Redis while it is known to be failing.
    assert await metric(FALLBACKS, dependency="redis", operation="products.read") == fallbacks + 1
    assert await metric(UNCACHED, kind="product", reason="redis_unavailable") == uncached + 3
    assert await metric(LOOKUPS, cache="product", result="fallback") == fell_back["product"] + 3
    assert (
        await metric(LOOKUPS, cache="product_list", result="fallback")
        == fell_back["product_list"] + 1
    )


async def test_writes_and_orders_work_without_redis(
    make_client: ClientFactory,
    dead_redis_url: str,
    admin: dict[str, str],
    alice: dict[str, str],
    metric: MetricReader,
) -> None:
    before = await metric(FALLBACKS, dependency="redis", operation="products.invalidate")
    async with make_client(redis_url=dead_redis_url) as degraded:
        created = await degraded.post(
            PRODUCTS,
            json={
                "sku": "NO-REDIS",
                "name": "Kettle",
                "price": 2599,
                "currency": "EUR",
                "stock": 3,
            },
            headers=admin,
        )
        assert created.status_code == 201
        product = created.json()
        order = await degraded.post(
            "/api/v1/orders",
            json={"items": [{"product_id": product["id"], "quantity": 2}]},
            headers=alice,
        )
        assert order.status_code == 201
        assert (await degraded.get(f"{PRODUCTS}/{product['id']}")).json()["stock"] == 1
    after = await metric(FALLBACKS, dependency="redis", operation="products.invalidate")
    # The product's creation pays for the failure; the order's invalidation, inside the
    # back-off window, does not try Redis at all.
    assert after == before + 1


class RecordsHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_redis_outage_is_logged_once_per_burst(
    make_client: ClientFactory, make_product: ProductFactory, dead_redis_url: str
) -> None:
    product = await make_product()
    handler = RecordsHandler()
    async with make_client(redis_url=dead_redis_url, redis_retry_after_seconds=0) as degraded:
        dependency_log = logging.getLogger("shopstack_orders.dependencies")
        dependency_log.addHandler(handler)
        try:
            for _ in range(5):
                assert (await degraded.get(f"{PRODUCTS}/{product['id']}")).status_code == 200
        finally:
            dependency_log.removeHandler(handler)
    [record] = handler.records
    assert record.levelno == logging.WARNING
    assert "Redis" in record.getMessage()


# -- Redis frozen (a real redis-server stopped with SIGSTOP) ---------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Without a window (the control: the count sees what the back-off prevents), every order's
# invalidation tries Redis; with one, only the first meets the frozen Redis.
@pytest.mark.parametrize("window_seconds", [600, 0], ids=["back-off", "no-back-off"])
async def test_orders_during_a_redis_freeze_try_it_once_per_back_off_window(
    *,
    make_settings: SettingsFactory,
    freezable_redis: FreezableRedis,
    admin: dict[str, str],
    alice: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    window_seconds: float,
) -> None:
    app = create_app(
        make_settings(
            redis_url=freezable_redis.url,
            redis_timeout_seconds=0.1,
            redis_retry_after_seconds=window_seconds,
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://orders") as client,
    ):
        created = await client.post(
            PRODUCTS,
            json={"sku": "FROZEN", "name": "Kettle", "price": 2599, "currency": "EUR", "stock": 9},
            headers=admin,
        )
        assert created.status_code == 201
        pool = resources_of(app).redis.connection_pool
        attempts = 0
        get_connection = pool.get_connection

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal attempts
            attempts += 1
            return await get_connection(*args, **kwargs)

        monkeypatch.setattr(pool, "get_connection", counted)
        freezable_redis.freeze()
        try:
            for _ in range(3):
                order = await client.post(
                    "/api/v1/orders",
                    json={"items": [{"product_id": created.json()["id"], "quantity": 1}]},
                    headers=alice,
                )
                assert order.status_code == 201, order.text
        finally:
            freezable_redis.thaw()
    if window_seconds:
        assert attempts == 1
    else:
        assert attempts >= 3


async def test_an_invalidation_redis_missed_is_sent_before_the_next_read_reaches_it(
    freezable_redis: FreezableRedis,
) -> None:
    """Without that, the entry the invalidation should have retired is served again as soon
    as Redis answers, until its TTL."""
    product_id = uuid.uuid4()
    clock = Clock()
    async with redis.asyncio.Redis.from_url(
        freezable_redis.url, socket_timeout=0.1, decode_responses=True
    ) as r:
        cache = product_cache(r, ttl_seconds=600, retry_after_seconds=2, clock=clock)

        async def build(value: str) -> str:
            return value

        assert await cache.item(product_id, lambda: build("before")) == "before"
        generation = await r.get(item_generation_key(product_id))
        freezable_redis.freeze()
        try:
            await cache.invalidate([product_id])  # the write committed; Redis hangs
        finally:
            freezable_redis.thaw()
        assert await cache.item(product_id, lambda: build("after")) == "after"  # skipped Redis
        clock.now += 2  # the window is over
        assert await cache.item(product_id, lambda: build("after")) == "after"
        assert await r.get(item_generation_key(product_id)) != generation
        assert await cache.item(product_id, lambda: build("unused")) == "after"  # cached again
