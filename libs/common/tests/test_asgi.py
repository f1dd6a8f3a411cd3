"""The ASGI middleware and FastAPI wiring, on a small app built for the test; WebSocket scopes
driven by hand, the way a server drives them."""

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from shopstack_common.asgi import (
    ASGIApp,
    Message,
    Receive,
    RequestContextMiddleware,
    Scope,
    Send,
    send_problem,
)
from shopstack_common.fastapi_adapter import install_problem_handlers, ops_router
from shopstack_common.problems import CONFLICT, QUOTA_EXCEEDED, ProblemError


class Item(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(ge=1)


def build_app(*, ready: bool = True) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    async def check() -> None:
        if not ready:
            raise ConnectionError("connection refused")

    app.include_router(ops_router(lambda: {"postgres": check}, timeout=1))

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise ProblemError(CONFLICT, "zero is taken")
        if item_id == 13:
            raise RuntimeError("unlucky")
        return {"id": item_id}

    @app.post("/items")
    async def create_item(items: list[Item]) -> dict[str, int]:
        return {"count": len(items)}

    app.add_middleware(RequestContextMiddleware)
    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app()), base_url="http://t")


def sample(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "shopstack_http_requests_total", {"route": route, "method": "GET", "status": status}
    )
    return value or 0.0


async def test_request_id_is_created_and_echoed(client: httpx.AsyncClient) -> None:
    created = await client.get("/items/1")
    assert len(created.headers["x-request-id"]) == 32
    kept = await client.get("/items/1", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"


async def test_metrics_use_the_route_template(client: httpx.AsyncClient) -> None:
    before = sample("/items/{item_id}", "2xx")
    await client.get("/items/7")
    await client.get("/items/8")
    assert sample("/items/{item_id}", "2xx") == before + 2
    assert (
        REGISTRY.get_sample_value(
            "shopstack_http_requests_total", {"route": "/items/7", "method": "GET", "status": "2xx"}
        )
        is None
    )


async def test_unmatched_paths_share_one_label(client: httpx.AsyncClient) -> None:
    before = sample("<unmatched>", "4xx")
    response = await client.get("/nowhere/at/all")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert sample("<unmatched>", "4xx") == before + 1


async def test_validation_errors_name_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json=[{"name": "", "quantity": 0}, {"quantity": "x"}])
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"[0].name", "[0].quantity", "[1].name", "[1].quantity"}
    assert all(error["location"] == "body" for error in body["errors"])
    assert body["request_id"] == response.headers["x-request-id"]


async def test_problem_error_becomes_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/0")
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/conflict"


async def test_unhandled_error_is_a_500_problem_without_a_trace(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="shopstack.errors"):
        response = await client.get("/items/13")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
    assert body["type"] == "/problems/internal-error"
    assert "unlucky" not in json.dumps(body)
    assert body["request_id"] == response.headers["x-request-id"]
    assert any("unhandled error" in record.message for record in caplog.records)


async def test_path_validation_names_the_path_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/abc")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "item_id"
    assert response.json()["errors"][0]["location"] == "path"


async def test_ops_routes() -> None:
    ok = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app()), base_url="http://t")
    assert (await ok.get("/healthz")).json() == {"status": "ok"}
    ready = await ok.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["postgres"]["status"] == "ok"
    metrics = await ok.get("/metrics")
    assert "shopstack_http_requests_total" in metrics.text

    down = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(ready=False)), base_url="http://t"
    )
    not_ready = await down.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    assert not_ready.json()["checks"]["postgres"] == {
        "status": "fail",
        "error": "connection refused",
    }
    # Alive even when not ready: liveness never looks at dependencies.
    assert (await down.get("/healthz")).status_code == 200


# -- WebSocket scopes ---------------------------------------------------------------------


async def handshake(
    app: ASGIApp, *, denial_response: bool, headers: list[tuple[bytes, bytes]] | None = None
) -> list[Message]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws",
        "headers": headers or [],
        "extensions": {"websocket.http.response": {}} if denial_response else {},
    }
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    await app(scope, inbox.get, send)
    return sent


def refusing(problem: ProblemError) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_problem(scope, send, problem)

    return app


async def test_a_refused_handshake_gets_the_problem_as_an_http_answer() -> None:
    problem = ProblemError(QUOTA_EXCEEDED, "slow down", headers={"Retry-After": "3"})
    sent = await handshake(refusing(problem), denial_response=True)
    start, body = sent
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 429
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"retry-after"] == b"3"
    assert body["type"] == "websocket.http.response.body"
    assert json.loads(body["body"])["detail"] == "slow down"


async def test_without_the_extension_a_refused_handshake_is_closed_with_4000_plus_status() -> None:
    problem = ProblemError(QUOTA_EXCEEDED, "slow down " * 30)
    [close] = await handshake(refusing(problem), denial_response=False)
    assert close["type"] == "websocket.close"
    assert close["code"] == 4429
    assert len(close["reason"].encode()) <= 123


async def test_a_websocket_gets_a_request_id_and_an_access_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def accept(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})

    with caplog.at_level(logging.INFO, logger="shopstack.access"):
        [accepted] = await handshake(
            RequestContextMiddleware(accept, route_of=lambda scope: "/ws/*"),
            denial_response=True,
            headers=[(b"x-request-id", b"ws-1")],
        )
    assert dict(accepted["headers"])[b"x-request-id"] == b"ws-1"
    [record] = caplog.records
    assert (record.status, record.route, record.protocol) == (101, "/ws/*", "websocket")  # type: ignore[attr-defined]


@pytest.mark.parametrize("denial_response", [True, False])
async def test_an_unhandled_error_before_accept_refuses_the_websocket(
    denial_response: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("unlucky")

    with caplog.at_level(logging.INFO):
        sent = await handshake(RequestContextMiddleware(broken), denial_response=denial_response)
    if denial_response:
        assert sent[0]["status"] == 500
        body = json.loads(sent[1]["body"])
        assert body["type"] == "/problems/internal-error"
        assert "unlucky" not in json.dumps(body)
        assert body["request_id"] == dict(sent[0]["headers"])[b"x-request-id"].decode()
    else:
        assert sent[0]["code"] == 4500
    [access] = [r for r in caplog.records if r.name == "shopstack.access"]
    assert access.status == (500 if denial_response else 403)  # type: ignore[attr-defined]
    assert any("unhandled error" in record.message for record in caplog.records)
