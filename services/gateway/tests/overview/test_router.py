"""GET /api/v1/me/overview against in-process users and orders that follow the contracts."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiohttp import web

from ..conftest import NOWHERE, GatewayFactory, Issuer, UpstreamServer

USER_ID = "6f1c2a8e-8a57-4c53-9d2a-3c1f6f1f0b11"
STATUSES = ("pending", "paid", "shipped", "cancelled")


class FakeUsers:
    def __init__(self) -> None:
        self.status = 200
        self.profile: dict[str, Any] = {
            "id": USER_ID,
            "email": "ada@example.com",
            "full_name": "Ada Lovelace",
            "roles": ["customer"],
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
        }
        self.seen: list[dict[str, str]] = []
        self.rendezvous: tuple[asyncio.Event, asyncio.Event] | None = None

    def app(self) -> web.Application:
        async def me(request: web.Request) -> web.Response:
            self.seen.append(dict(request.headers))
            if self.rendezvous:
                mine, theirs = self.rendezvous
                mine.set()
                await asyncio.wait_for(theirs.wait(), 2)
            if request.headers.get("X-Shopstack-User-Id") != USER_ID:
                return web.json_response({"status": 401}, status=401)
            return web.json_response(self.profile, status=self.status)

        app = web.Application()
        app.router.add_get("/api/v1/users/me", me)
        return app


class FakeOrders:
    def __init__(self) -> None:
        self.summary_status = 200
        self.seen: list[str] = []
        self.traceparents: list[str] = []
        self.rendezvous: tuple[asyncio.Event, asyncio.Event] | None = None

    def app(self) -> web.Application:
        async def orders(request: web.Request) -> web.Response:
            self.seen.append(request.path_qs)
            self.traceparents.append(request.headers.get("traceparent", ""))
            if self.rendezvous:
                mine, theirs = self.rendezvous
                mine.set()
                await asyncio.wait_for(theirs.wait(), 2)
            limit = int(request.query["limit"])
            items = [{"id": str(uuid.uuid4()), "status": "paid"} for _ in range(limit)]
            return web.json_response({"items": items, "next_cursor": "abc"})

        async def summary(request: web.Request) -> web.Response:
            self.seen.append(request.path_qs)
            self.traceparents.append(request.headers.get("traceparent", ""))
            counts = dict.fromkeys(STATUSES, 0) | {"paid": 7, "pending": 1}
            return web.json_response(
                {"counts_by_status": counts, "total": 8}, status=self.summary_status
            )

        app = web.Application()
        app.router.add_get("/api/v1/orders", orders)
        app.router.add_get("/api/v1/orders/summary", summary)
        return app


@pytest.fixture
def users() -> FakeUsers:
    return FakeUsers()


@pytest.fixture
def orders() -> FakeOrders:
    return FakeOrders()


@pytest.fixture
def token(issuer: Issuer) -> dict[str, str]:
    return issuer.bearer(sub=USER_ID)


async def test_overview_combines_profile_and_orders(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    orders: FakeOrders,
    token: dict[str, str],
) -> None:
    async with (
        serve_upstream(users.app()) as users_url,
        serve_upstream(orders.app()) as orders_url,
        make_gateway({"users": users_url, "orders": orders_url}) as client,
    ):
        response = await client.get(
            "/api/v1/me/overview", headers={**token, "X-Request-ID": "overview-1"}
        )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    body = response.json()
    assert body["profile"]["email"] == "ada@example.com"
    assert len(body["orders"]["latest"]) == 5
    assert body["orders"]["counts_by_status"]["paid"] == 7
    assert body["orders"]["total"] == 8
    assert body["missing"] == []
    assert sorted(orders.seen) == ["/api/v1/orders/summary", "/api/v1/orders?limit=5"]
    assert users.seen[0]["X-Request-ID"] == "overview-1"
    assert users.seen[0]["traceparent"].startswith("00-")


async def test_overview_asks_users_and_orders_at_the_same_time(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    orders: FakeOrders,
    token: dict[str, str],
) -> None:
    # Each upstream waits until the other has been asked: asked one after the other, the first
    # would give up and its part would be missing.
    users_asked, orders_asked = asyncio.Event(), asyncio.Event()
    users.rendezvous = (users_asked, orders_asked)
    orders.rendezvous = (orders_asked, users_asked)
    async with (
        serve_upstream(users.app()) as users_url,
        serve_upstream(orders.app()) as orders_url,
        make_gateway({"users": users_url, "orders": orders_url}) as client,
    ):
        response = await client.get("/api/v1/me/overview", headers=token)
    assert response.json()["missing"] == []


async def test_orders_down_still_answers_with_the_profile(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    token: dict[str, str],
) -> None:
    nowhere = NOWHERE
    async with (
        serve_upstream(users.app()) as users_url,
        make_gateway({"users": users_url, "orders": nowhere}) as client,
    ):
        response = await client.get("/api/v1/me/overview", headers=token)
    assert response.status_code == 200
    body = response.json()
    assert body["profile"]["id"] == USER_ID
    assert body["orders"] is None
    assert body["missing"] == [
        {"part": "orders", "status": None, "detail": "orders is unreachable."}
    ]


@pytest.mark.parametrize("case", [("error", 500), ("shape", 200)], ids=["error", "shape"])
async def test_a_failing_users_still_answers_with_the_orders(
    *,
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    orders: FakeOrders,
    token: dict[str, str],
    case: tuple[str, int],
) -> None:
    breakage, status = case
    if breakage == "error":
        users.status = 500
    else:
        del users.profile["email"]
    async with (
        serve_upstream(users.app()) as users_url,
        serve_upstream(orders.app()) as orders_url,
        make_gateway({"users": users_url, "orders": orders_url}) as client,
    ):
        response = await client.get("/api/v1/me/overview", headers=token)
    assert response.status_code == 200
    body = response.json()
    assert body["profile"] is None
    assert body["orders"]["total"] == 8
    [missing] = body["missing"]
    assert (missing["part"], missing["status"]) == ("profile", status)


async def test_half_an_orders_answer_is_a_missing_orders_part(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    orders: FakeOrders,
    token: dict[str, str],
) -> None:
    orders.summary_status = 500
    async with (
        serve_upstream(users.app()) as users_url,
        serve_upstream(orders.app()) as orders_url,
        make_gateway({"users": users_url, "orders": orders_url}) as client,
    ):
        body = (await client.get("/api/v1/me/overview", headers=token)).json()
    assert body["profile"] is not None
    assert body["orders"] is None
    assert body["missing"][0]["part"] == "orders"


async def test_both_down_is_a_503_problem(
    make_gateway: GatewayFactory, token: dict[str, str]
) -> None:
    nowhere = NOWHERE
    async with make_gateway({"users": nowhere, "orders": nowhere}) as client:
        response = await client.get("/api/v1/me/overview", headers=token)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/overview-unavailable")
    assert {part["part"] for part in body["missing"]} == {"profile", "orders"}
    assert body["request_id"] == response.headers["x-request-id"]


async def test_overview_needs_a_user_token(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    orders: FakeOrders,
    issuer: Issuer,
) -> None:
    async with (
        serve_upstream(users.app()) as users_url,
        serve_upstream(orders.app()) as orders_url,
        make_gateway({"users": users_url, "orders": orders_url}) as client,
    ):
        anonymous = await client.get("/api/v1/me/overview")
        service = await client.get(
            "/api/v1/me/overview",
            headers=issuer.bearer(sub="reporting", client_id="reporting", roles=[]),
        )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="shopstack"'
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert service.status_code == 403
    assert service.json()["type"].endswith("/user-required")
    assert users.seen == []
    assert orders.seen == []


async def test_every_upstream_call_carries_the_gateways_trace(
    *,
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    users: FakeUsers,
    orders: FakeOrders,
    token: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No traceparent comes in: the gateway starts the trace, and its calls continue it.
    async with (
        serve_upstream(users.app()) as users_url,
        serve_upstream(orders.app()) as orders_url,
        make_gateway({"users": users_url, "orders": orders_url}) as client,
    ):
        response = await client.get("/api/v1/me/overview", headers=token)
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    [access] = [line for line in lines if line["logger"] == "shopstack.access"]
    traceparents = [users.seen[0]["traceparent"], *orders.traceparents]
    assert len(traceparents) == 3
    assert {traceparent.split("-")[1] for traceparent in traceparents} == {access["trace_id"]}
