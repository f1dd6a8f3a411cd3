"""/problems and /problems/<slug>: every problem type is described at its URI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shopstack_common.problems import ProblemType, problem_types
from shopstack_gateway.problems.router import prefers_html

from ..conftest import NOWHERE, GatewayFactory

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> AsyncIterator[httpx.AsyncClient]:
    nowhere = NOWHERE
    async with make_gateway({"users": nowhere, "orders": nowhere}) as client:
        yield client


async def test_the_index_lists_every_registered_type(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/problems")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    assert response.headers["cache-control"].startswith("public")
    items = response.json()["items"]
    assert [item["slug"] for item in items] == [p.slug for p in problem_types()]
    assert set(items[0]) == {"slug", "status", "title", "description", "type"}


@pytest.mark.parametrize("problem", problem_types(), ids=lambda p: p.slug)
async def test_each_type_has_its_page(gateway: httpx.AsyncClient, problem: ProblemType) -> None:
    response = await gateway.get(f"/problems/{problem.slug}")
    assert response.status_code == 200
    assert response.json() == {
        "slug": problem.slug,
        "status": problem.status,
        "title": problem.title,
        "description": problem.description,
        "type": problem.type_uri,
    }


async def test_a_browser_gets_html(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/problems/out-of-stock", headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Out of stock</h1>" in page.text
    assert "<code>errors</code>" in page.text  # the description's `code` spans
    index = await gateway.get("/problems", headers={"Accept": BROWSER})
    assert '<a href="/problems/out-of-stock">out-of-stock</a>' in index.text


async def test_an_unknown_slug_is_a_404_problem(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/problems/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/not-found"


async def test_a_malformed_slug_is_a_422_naming_it(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/problems/Not_A_Slug")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "slug"


async def test_the_type_of_a_gateway_answer_can_be_followed(gateway: httpx.AsyncClient) -> None:
    refused = await gateway.get("/api/v1/orders")
    assert refused.status_code == 401
    described = await gateway.get(refused.json()["type"])
    assert described.status_code == 200
    assert described.json()["slug"] == "authentication-required"
    assert described.json()["status"] == 401


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/html;q=0.5", False),
        (BROWSER, True),
        ("text/html", True),
        ("application/json;q=0.5, text/*", True),
        ("text/html;q=bogus, application/json;q=0.1", False),
    ],
)
def test_prefers_html(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html
