"""The ASGI middleware and FastAPI wiring, on a small app built for the test."""

import json
import logging

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from shopstack_common.asgi import RequestContextMiddleware
from shopstack_common.fastapi_support import ProblemError, install_problem_handlers, ops_router


class Item(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(ge=1)


def build_app(*, ready: bool = True) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    async def check() -> None:
        if not ready:
            raise ConnectionError("connection refused")

    app.include_router(ops_router({"postgres": check}, timeout=1))

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise ProblemError(409, slug="conflict", detail="zero is taken")
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
    assert response.json()["type"] == "https://shopstack.dev/problems/conflict"


async def test_unhandled_error_is_a_500_problem_without_a_trace(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="shopstack.errors"):
        response = await client.get("/items/13")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
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
