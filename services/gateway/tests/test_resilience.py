"""Circuit breaker, retry budget and retries: the parts on a fake clock, then through the proxy
against in-process upstreams that fail on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from shopstack_devstack.ports import free_port
from shopstack_gateway.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    RetryBudget,
    backoff_seconds,
)

from .conftest import GatewayFactory, Issuer, UpstreamServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the breaker on its own -------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def transitions(to_state: str) -> float:
    return sample(
        "shopstack_gateway_circuit_transitions_total", upstream="orders", to_state=to_state
    )


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read afresh each time (a type checker takes the property for a constant)."""
    return breaker.state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("orders", failure_threshold=3, open_seconds=10, clock=clock)


def test_breaker_opens_after_consecutive_failures_only(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        breaker.before_request()
        breaker.record_failure()
    breaker.record_success()  # the streak is broken
    for _ in range(2):
        breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN


def test_open_breaker_refuses_with_the_time_left(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 4
    with pytest.raises(CircuitOpenError) as refused:
        breaker.before_request()
    assert refused.value.retry_after == pytest.approx(6)


def test_half_open_lets_one_probe_through_and_closes_on_its_success(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    before = {to: transitions(to) for to in ("open", "half_open", "closed")}
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    breaker.before_request()  # the probe
    assert state(breaker) is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_request()  # nobody else while the probe is out
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    breaker.before_request()
    # Each state entered once, and the gauge back at closed.
    assert {to: transitions(to) - before[to] for to in before} == {
        "open": 1,
        "half_open": 1,
        "closed": 1,
    }
    assert sample("shopstack_gateway_circuit_state", upstream="orders") == 0


def test_a_failed_probe_opens_the_breaker_again(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    breaker.before_request()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as refused:
        breaker.before_request()
    assert refused.value.retry_after == pytest.approx(10)


def test_a_probe_that_never_reports_does_not_wedge_the_breaker(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    breaker.before_request()  # this probe's client goes away: no outcome is ever recorded
    clock.now += 10
    breaker.before_request()  # the next request becomes the probe
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED


# -- the retry budget and backoff -------------------------------------------------------


def test_retry_budget_allows_a_share_of_the_traffic(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.25, min_per_second=0, clock=clock)
    while budget.try_spend():  # spend what it starts with
        pass
    for _ in range(40):
        budget.record_request()
    spent = 0
    while budget.try_spend():
        spent += 1
    assert spent == 10


def test_retry_budget_refills_over_time_up_to_its_cap(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0, min_per_second=1, clock=clock)
    while budget.try_spend():
        pass
    assert not budget.try_spend()
    clock.now += 2
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    clock.now += 10_000  # a long quiet spell banks no more than the cap
    spent = 0
    while budget.try_spend():
        spent += 1
    assert spent == budget.cap


@pytest.mark.parametrize("retry", [1, 2, 3, 8])
def test_backoff_is_jittered_below_the_exponential_step_and_the_cap(retry: int) -> None:
    samples = [backoff_seconds(retry, base=0.05, cap=0.3) for _ in range(200)]
    ceiling = min(0.3, 0.05 * 2 ** (retry - 1))
    assert all(0 <= s <= ceiling for s in samples)
    assert len(set(samples)) > 100  # jitter, not a fixed delay


# -- through the proxy ------------------------------------------------------------------


class Flaky:
    """Answers ``failures`` requests with 503, then 201/200; counts requests and bodies."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests = 0
        self.bodies: list[bytes] = []

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.requests += 1
            self.bodies.append(await request.read())
            if self.requests <= self.failures:
                return web.json_response({"detail": "busy"}, status=503)
            return web.json_response({"ok": True}, status=201 if request.method == "POST" else 200)

        async def slow(_: web.Request) -> web.Response:
            self.requests += 1
            await asyncio.sleep(2)
            return web.json_response({})

        app = web.Application()
        app.router.add_get("/api/v1/products/slow", slow)
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


@asynccontextmanager
async def hanging_up(port: int, times: int) -> AsyncIterator[list[int]]:
    """A raw server that reads a request and hangs up ``times`` times, then answers 200."""
    connections = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        await reader.readuntil(b"\r\n\r\n")
        if connections[0] > times:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield connections
    finally:
        server.close()
        await server.wait_closed()


DURATION_COUNT = "shopstack_gateway_upstream_request_duration_seconds_count"
FAST_RETRIES = {"retry": {"backoff_base_seconds": 0.001, "backoff_max_seconds": 0.002}}


async def test_get_is_retried_after_an_unavailable_answer(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    flaky = Flaky(failures=2)
    timed = {
        outcome: sample(DURATION_COUNT, upstream="orders", outcome=outcome)
        for outcome in ("ok", "error_status")
    }
    async with (
        serve_upstream(flaky.app()) as url,
        make_gateway({"users": url, "orders": url}, upstream_options=FAST_RETRIES) as client,
    ):
        response = await client.get("/api/v1/products")
    assert response.status_code == 200
    assert flaky.requests == 3
    # Every attempt is timed, by its outcome.
    assert sample(DURATION_COUNT, upstream="orders", outcome="error_status") == (
        timed["error_status"] + 2
    )
    assert sample(DURATION_COUNT, upstream="orders", outcome="ok") == timed["ok"] + 1


async def test_get_is_retried_after_the_upstream_hangs_up(make_gateway: GatewayFactory) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with (
        hanging_up(port, times=1) as connections,
        make_gateway({"users": url, "orders": url}, upstream_options=FAST_RETRIES) as client,
    ):
        response = await client.get("/api/v1/products")
    assert response.status_code == 200
    assert response.text == "ok"
    assert connections[0] == 2


async def test_post_without_idempotency_key_is_never_retried(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, issuer: Issuer
) -> None:
    flaky = Flaky(failures=1)
    async with (
        serve_upstream(flaky.app()) as url,
        make_gateway({"users": url, "orders": url}, upstream_options=FAST_RETRIES) as client,
    ):
        response = await client.post("/api/v1/orders", json={"a": 1}, headers=issuer.bearer())
    # The upstream's own 503 goes back as it was, after exactly one try.
    assert response.status_code == 503
    assert response.json() == {"detail": "busy"}
    assert flaky.requests == 1


async def test_post_without_idempotency_key_is_not_retried_after_a_hang_up(
    make_gateway: GatewayFactory, issuer: Issuer
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with (
        hanging_up(port, times=1) as connections,
        make_gateway({"users": url, "orders": url}, upstream_options=FAST_RETRIES) as client,
    ):
        response = await client.post("/api/v1/orders", json={"a": 1}, headers=issuer.bearer())
    assert response.status_code == 502
    assert connections[0] == 1


async def test_post_with_idempotency_key_is_retried_with_its_whole_body(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, issuer: Issuer
) -> None:
    flaky = Flaky(failures=1)
    async with (
        serve_upstream(flaky.app()) as url,
        make_gateway({"users": url, "orders": url}, upstream_options=FAST_RETRIES) as client,
    ):
        response = await client.post(
            "/api/v1/orders",
            content=b'{"items": [1, 2, 3]}',
            headers={**issuer.bearer(), "Idempotency-Key": "order-42"},
        )
    assert response.status_code == 201
    assert flaky.bodies == [b'{"items": [1, 2, 3]}'] * 2


async def test_retries_stop_when_the_budget_is_spent(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    flaky = Flaky(failures=100)
    options = {"retry": {**FAST_RETRIES["retry"], "budget_ratio": 0, "budget_min_per_second": 0}}
    async with (
        serve_upstream(flaky.app()) as url,
        make_gateway({"users": url, "orders": url}, upstream_options=options) as client,
    ):
        first = await client.get("/api/v1/products")
        second = await client.get("/api/v1/products")
    assert (first.status_code, second.status_code) == (503, 503)
    # The budget held one retry: the first request had it, the second got none.
    assert flaky.requests == 3


async def test_slow_upstream_is_504_and_not_retried(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    flaky = Flaky(failures=0)
    async with (
        serve_upstream(flaky.app()) as url,
        make_gateway(
            {"users": url, "orders": url}, read_timeout_seconds=0.2, upstream_options=FAST_RETRIES
        ) as client,
    ):
        response = await client.get("/api/v1/products/slow")
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert flaky.requests == 1


async def test_breaker_opens_on_a_dead_upstream_and_closes_when_it_is_back(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    options = {
        **FAST_RETRIES,
        "breaker": {"failure_threshold": 3, "open_seconds": 0.3},
    }
    async with make_gateway({"users": url, "orders": url}, upstream_options=options) as client:
        statuses = [(await client.get("/api/v1/products")).status_code for _ in range(3)]
        # Three tries each: the first request's failures open the breaker.
        assert statuses[0] == 502
        assert statuses[1:] == [503, 503]
        refused = await client.get("/api/v1/products")
        assert refused.json()["type"].endswith("/upstream-circuit-open")
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["request_id"] == refused.headers["x-request-id"]

        async with serve_upstream(Flaky(failures=0).app(), port):
            await asyncio.sleep(0.35)  # the open period ends; the next request is the probe
            recovered = await client.get("/api/v1/products")
            assert recovered.status_code == 200
            assert (await client.get("/api/v1/products")).status_code == 200


class Unavailable:
    """Answers every request with ``status`` in ``content_type``; counts the requests."""

    def __init__(self, status: int, content_type: str) -> None:
        self.status = status
        self.content_type = content_type
        self.requests = 0

    def app(self) -> web.Application:
        async def handle(_: web.Request) -> web.Response:
            self.requests += 1
            return web.Response(
                status=self.status,
                body=b'{"type": "/problems/database-unavailable", "status": 503}',
                headers={"Content-Type": self.content_type, "Retry-After": "1"},
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


NO_RETRIES = {"retry": {"attempts": 1}, "breaker": {"failure_threshold": 3, "open_seconds": 60}}


@pytest.mark.parametrize(
    ("status", "content_type", "opens"),
    [
        # The service's own answer: it is up, only its database is not.
        (503, "application/problem+json", False),
        (503, "application/problem+json; charset=utf-8", False),
        # Not the service speaking: something in front of it, or another server.
        (503, "text/html", True),
        (502, "application/problem+json", True),
        (504, "application/problem+json", True),
    ],
)
async def test_only_an_upstream_that_cannot_answer_opens_its_breaker(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    status: int,
    content_type: str,
    opens: bool,
) -> None:
    upstream = Unavailable(status, content_type)
    async with (
        serve_upstream(upstream.app()) as url,
        make_gateway({"users": url, "orders": url}, upstream_options=NO_RETRIES) as client,
    ):
        answers = [await client.get("/api/v1/products") for _ in range(6)]
    refused = [a for a in answers if a.json()["type"].endswith("/upstream-circuit-open")]
    if opens:
        assert len(refused) == 3
        assert upstream.requests == 3
    else:
        assert refused == []
        assert upstream.requests == 6
        assert [a.status_code for a in answers] == [503] * 6
        assert all(a.headers["retry-after"] == "1" for a in answers)


async def test_a_probe_answered_by_the_service_itself_closes_the_breaker(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    """orders restarts while its database is still down: its first answer, a well-formed 503,
    shows it is back, so its other routes (cached reads) are let through at once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    options = {**NO_RETRIES, "breaker": {"failure_threshold": 3, "open_seconds": 0.2}}
    async with make_gateway({"users": url, "orders": url}, upstream_options=options) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/products")).status_code == 502  # dead: opens
        upstream = Unavailable(503, "application/problem+json")
        async with serve_upstream(upstream.app(), port):
            await asyncio.sleep(0.25)  # the open period ends; the next request is the probe
            probe = await client.get("/api/v1/products")
            assert probe.json()["type"] == "/problems/database-unavailable"
            after = [await client.get("/api/v1/products") for _ in range(3)]
    assert all(a.json()["type"] == "/problems/database-unavailable" for a in after)
    assert upstream.requests == 4
