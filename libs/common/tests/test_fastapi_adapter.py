import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from shopstack_common.fastapi_adapter import install_problem_handlers


class Item(BaseModel):
    name: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    router = APIRouter(prefix="/items")

    @router.get("")
    async def list_items() -> list[str]:
        return []

    @router.post("")
    async def add_item(item: Item) -> Item:
        return item

    @router.delete("/{name}")
    async def remove_item(name: str) -> None:
        return None

    app.include_router(router)
    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app()), base_url="http://t")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", "/items", "GET, POST"), ("GET", "/items/tea", "DELETE")],
)
async def test_a_405_names_the_methods_of_every_route_at_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    async with client:
        response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize("body", [b"{nope", b'{"name": "\xff"}'], ids=["not-json", "not-utf8"])
async def test_a_body_that_cannot_be_read_is_a_400_malformed_request(
    client: httpx.AsyncClient, body: bytes
) -> None:
    async with client:
        response = await client.post(
            "/items", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-request")


async def test_a_wrong_field_is_still_a_422_naming_it(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.post("/items", json={"name": 5})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["name"]
