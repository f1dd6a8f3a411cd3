from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from services.orders.tests.conftest import ProductFactory

LIST = "/api/v1/products"


async def all_pages(
    client: httpx.AsyncClient, params: dict[str, Any], between: Any = None
) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; ``between`` runs after each page."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await client.get(LIST, params=params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= params.get("limit", 20)
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        if between is not None:
            await between()


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("name", "name", False),
        ("-name", "name", True),
        ("price", "price", False),
        ("-price", "price", True),
    ],
)
async def test_sorted_pages_are_stable_with_ties(
    client: httpx.AsyncClient, make_product: ProductFactory, sort: str, key: str, reverse: bool
) -> None:
    # Many ties on both sort keys: only the id tie-breaker keeps pages apart.
    made = [await make_product(name=f"Tea {i % 3}", price=100 * (i % 4)) for i in range(13)]
    seen = await all_pages(client, {"sort": sort, "limit": 4})
    assert sorted(p["id"] for p in seen) == sorted(p["id"] for p in made)
    expected = sorted(made, key=lambda p: (p[key], p["id"]), reverse=reverse)
    assert [p["id"] for p in seen] == [p["id"] for p in expected]


async def test_no_duplicates_or_gaps_while_products_are_added_between_pages(
    client: httpx.AsyncClient, make_product: ProductFactory
) -> None:
    before = [await make_product(name=f"Kettle {i:02d}") for i in range(10)]
    added: list[dict[str, Any]] = []

    async def add_some() -> None:
        # One sorts before every page, one after: neither may disturb what the pages show.
        added.append(await make_product(name=f"AAA {len(added)}"))
        added.append(await make_product(name=f"ZZZ {len(added)}"))

    seen = await all_pages(client, {"limit": 3}, between=add_some)
    ids = [p["id"] for p in seen]
    assert len(ids) == len(set(ids)), "a product appeared twice"
    assert {p["id"] for p in before} <= set(ids), "a product was skipped"
    late = {p["id"] for p in added if p["name"].startswith("ZZZ")}
    assert late <= set(ids), "products added after the cursor belong on later pages"


async def test_filter_by_text_and_active(
    client: httpx.AsyncClient, make_product: ProductFactory, admin: dict[str, str]
) -> None:
    sencha = await make_product(name="Sencha", description="steamed green tea")
    await make_product(name="Assam", description="malty black tea")
    retired = await make_product(name="Old green blend", active=False)
    special = await make_product(name="100% cocoa_bar")

    def names(items: list[dict[str, Any]]) -> list[str]:
        return sorted(p["name"] for p in items)

    assert names(await all_pages(client, {"q": "GREEN"})) == ["Old green blend", "Sencha"]
    assert names(await all_pages(client, {"q": "green", "active": "true"})) == ["Sencha"]
    assert names(await all_pages(client, {"active": "false"})) == ["Old green blend"]
    assert names(await all_pages(client, {"q": sencha["sku"].lower()})) == ["Sencha"]
    # LIKE wildcards in the text are matched literally.
    assert names(await all_pages(client, {"q": "0%"})) == [special["name"]]
    assert names(await all_pages(client, {"q": "a_b"})) == [special["name"]]
    assert await all_pages(client, {"q": "%"}) == [
        p for p in await all_pages(client, {}) if "%" in p["name"]
    ]
    assert retired["active"] is False


async def test_default_and_maximum_limit(
    client: httpx.AsyncClient, make_product: ProductFactory
) -> None:
    for i in range(21):
        await make_product(name=f"Cup {i:02d}")
    first = (await client.get(LIST)).json()
    assert len(first["items"]) == 20
    assert first["next_cursor"] is not None
    whole = (await client.get(LIST, params={"limit": 100})).json()
    assert len(whole["items"]) == 21
    assert whole["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"sort": "stock"}, "sort"),
        ({"active": "maybe"}, "active"),
        # JSON Schema's boolean is true or false; pydantic alone reads these as one.
        ({"active": "1"}, "active"),
        ({"active": "yes"}, "active"),
        ({"q": "x" * 101}, "q"),
        ({"q": "green\x00"}, "q"),  # PostgreSQL text cannot hold NUL
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJ2IjoxfQ"}, "cursor"),  # base64 JSON, but not one of ours
        ({"cursor": "W10"}, "cursor"),  # base64 of []
        ({"surprise": "1"}, "surprise"),
    ],
)
async def test_bad_list_parameters_name_the_field(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get(LIST, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_cursor_only_works_with_the_query_it_came_from(
    client: httpx.AsyncClient, make_product: ProductFactory
) -> None:
    for i in range(3):
        await make_product(name=f"Pot {i}", price=100 + i)
    cursor = (await client.get(LIST, params={"limit": 1, "sort": "name"})).json()["next_cursor"]
    assert (await client.get(LIST, params={"limit": 2, "cursor": cursor})).status_code == 200
    for other in ({"sort": "price"}, {"sort": "-name"}, {"q": "Pot"}, {"active": "true"}):
        response = await client.get(LIST, params={"cursor": cursor} | other)
        assert response.status_code == 422, other
        assert response.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("query", ["q=a%ED%A0%80b", "q=%FF", "sort=name&q=tea%C3"])
async def test_a_query_that_is_not_utf8_text_is_a_400_naming_the_field(
    client: httpx.AsyncClient, query: str
) -> None:
    # Starlette alone would search for U+FFFD instead.
    response = await client.get(f"{LIST}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/malformed-request"
    assert [e["field"] for e in response.json()["errors"]] == ["q"]
