"""The merged OpenAPI document and the Swagger UI page that shows it."""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from aiohttp import web

from shopstack_common.openapi import HTTP_METHODS, PROBLEM_REF
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.openapi import SECURITY_SCHEME, OpenAPIMerger

from .conftest import NOWHERE, GatewayFactory, UpstreamServer


def problem_schema(title: str) -> dict[str, Any]:
    return {"type": "object", "title": title, "properties": {"status": {"type": "integer"}}}


USERS_DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shopstack users", "version": "v1"},
    "tags": [{"name": "accounts"}],
    "paths": {
        "/api/v1/auth/register": {
            "post": {
                "operationId": "register",
                "tags": ["accounts"],
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Register"}}
                    }
                },
                "responses": {"422": {"$ref": "#/components/responses/Problem"}},
            }
        },
        "/api/v1/users/{user_id}": {
            "get": {
                "operationId": "get_item",  # the same operationId as orders' product read
                "security": [{"users-own-scheme": []}],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                        },
                    }
                },
            }
        },
        "/healthz": {"get": {"operationId": "healthz", "responses": {}}},
    },
    "components": {
        "schemas": {
            "Register": {"type": "object"},
            "Problem": problem_schema("users"),
            "Item": {"type": "object", "title": "users' item"},
        },
        "responses": {
            "Problem": {
                "description": "problem",
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
        },
        "securitySchemes": {"users-own-scheme": {"type": "http", "scheme": "basic"}},
    },
}

ORDERS_DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shopstack orders", "version": "v1"},
    "paths": {
        "/api/v1/products": {
            "get": {"operationId": "list_products", "responses": {}},
            "post": {
                "operationId": "create_product",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                    }
                },
                "parameters": [
                    {"name": "X-Shopstack-User-Id", "in": "header", "schema": {"type": "string"}},
                    {"name": "X-Shopstack-Roles", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "201": {
                        "description": "created",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                        },
                        "links": {
                            "GetProduct": {
                                "operationId": "get_item",
                                "parameters": {"product_id": "$response.body#/id"},
                            },
                            "ListProducts": {"$ref": "#/components/links/ListProducts"},
                            "Health": {"operationId": "readyz"},
                            "ByPointer": {
                                "operationRef": "#/paths/~1api~1v1~1products~1{product_id}/get"
                            },
                        },
                    },
                    "409": {
                        "description": "taken",
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    },
                    "503": {"description": "The database did not answer."},
                },
            },
        },
        "/api/v1/products/{product_id}": {
            "get": {"operationId": "get_item", "responses": {"404": {"description": "gone"}}}
        },
        "/api/v1/orders": {
            "get": {
                "operationId": "register",  # the same operationId as users' register
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {},
            }
        },
        "/readyz": {"get": {"operationId": "readyz", "responses": {}}},
    },
    "components": {
        # Same names, different schemas: they must not overwrite users'.
        "schemas": {
            "Problem": problem_schema("orders"),
            "Item": {"type": "object", "title": "orders' item"},
            "Register": {"type": "object"},
        },
        "links": {"ListProducts": {"operationId": "list_products"}},
    },
}

OWN_DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shopstack gateway", "version": "v1"},
    "paths": {
        "/api/v1/me/overview": {
            "get": {
                "operationId": "get_overview",
                "security": [{SECURITY_SCHEME: []}],
                "responses": {"403": {"description": "not a user"}},
            }
        },
        "/problems": {"get": {"operationId": "list_problem_types", "responses": {}}},
    },
}


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def assert_refs_resolve(document: dict[str, Any]) -> None:
    for ref in refs(document):
        resolve(document, ref)


@pytest.fixture
def merged() -> dict[str, Any]:
    merger = OpenAPIMerger(settings=GatewaySettings(redis_url="redis://unused"), upstreams={})
    return merger.merge(OWN_DOC, {"users": USERS_DOC, "orders": ORDERS_DOC})


def test_paths_are_the_ones_clients_reach(merged: dict[str, Any]) -> None:
    assert sorted(merged["paths"]) == [
        "/api/v1/auth/register",
        "/api/v1/me/overview",
        "/api/v1/orders",
        "/api/v1/products",
        "/api/v1/products/{product_id}",
        "/api/v1/users/{user_id}",
        "/problems",
    ]


def test_security_follows_the_gateways_public_routes(merged: dict[str, Any]) -> None:
    paths = merged["paths"]
    secured: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]
    assert "security" not in paths["/api/v1/auth/register"]["post"]
    assert "security" not in paths["/api/v1/products"]["get"]
    assert paths["/api/v1/products"]["post"]["security"] == secured
    assert paths["/api/v1/orders"]["get"]["security"] == secured
    assert paths["/api/v1/users/{user_id}"]["get"]["security"] == secured  # not users' own
    assert paths["/api/v1/me/overview"]["get"]["security"] == secured
    assert "security" not in paths["/problems"]["get"]  # the gateway's own, public
    schemes = merged["components"]["securitySchemes"]
    assert schemes == {
        SECURITY_SCHEME: {
            "type": "oauth2",
            "description": schemes[SECURITY_SCHEME]["description"],
            "flows": {"password": {"tokenUrl": "/api/v1/auth/token", "scopes": {}}},
        }
    }


def test_identity_headers_are_not_documented(merged: dict[str, Any]) -> None:
    assert "parameters" not in merged["paths"]["/api/v1/products"]["post"]
    assert merged["paths"]["/api/v1/orders"]["get"]["parameters"][0]["name"] == "limit"


def test_clashing_components_are_renamed_and_references_follow(merged: dict[str, Any]) -> None:
    schemas = merged["components"]["schemas"]
    assert schemas["Item"]["title"] == "users' item"
    assert schemas["orders_Item"]["title"] == "orders' item"
    assert "orders_Register" not in schemas  # identical: shared, not duplicated
    created = merged["paths"]["/api/v1/products"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/orders_Item"
    )
    assert_refs_resolve(merged)


def test_every_error_is_the_one_shared_problem(merged: dict[str, Any]) -> None:
    schemas = merged["components"]["schemas"]
    # The services' own problem schemas are replaced, so nothing refers to them any more.
    assert "orders_Problem" not in schemas
    assert schemas["Problem"]["title"] == "Problem"
    for path, item in merged["paths"].items():
        for method in HTTP_METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                if int(status) >= 400:
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (path, status)
                    assert content["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}


def statuses(merged: dict[str, Any], path: str, method: str) -> set[int]:
    return {int(code) for code in merged["paths"][path][method]["responses"] if int(code) >= 400}


def test_the_gateways_own_answers_are_documented_on_every_operation(
    merged: dict[str, Any],
) -> None:
    # A proxied operation with a body, one without, a public one, and the gateway's own.
    assert statuses(merged, "/api/v1/products", "post") == {401, 409, 413, 429, 500, 502, 503, 504}
    assert statuses(merged, "/api/v1/orders", "get") == {401, 429, 500, 502, 503, 504}
    assert statuses(merged, "/api/v1/products/{product_id}", "get") == {
        401,
        404,
        429,
        500,
        502,
        503,
        504,
    }
    assert statuses(merged, "/api/v1/me/overview", "get") == {401, 403, 429, 500, 503}
    assert statuses(merged, "/problems", "get") == {401, 429, 500, 503}

    responses = merged["paths"]["/api/v1/products"]["post"]["responses"]
    assert set(responses["401"]["headers"]) == {"WWW-Authenticate"}
    assert set(responses["429"]["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
    assert set(responses["503"]["headers"]) == {"Retry-After"}
    # The service's own 503 keeps its meaning next to the gateway's.
    assert responses["503"]["description"].startswith("The database did not answer.")
    assert "From the gateway" in responses["503"]["description"]
    public = merged["paths"]["/api/v1/products"]["get"]["responses"]["401"]["description"]
    assert "not valid" in public


def test_links_follow_renamed_operation_ids(merged: dict[str, Any]) -> None:
    product_read = merged["paths"]["/api/v1/products/{product_id}"]["get"]
    assert product_read["operationId"] == "orders_get_item"
    assert merged["paths"]["/api/v1/users/{user_id}"]["get"]["operationId"] == "get_item"
    links = merged["paths"]["/api/v1/products"]["post"]["responses"]["201"]["links"]
    assert links["GetProduct"]["operationId"] == "orders_get_item"
    assert links["ByPointer"]["operationRef"] == "#/paths/~1api~1v1~1products~1{product_id}/get"
    assert merged["components"]["links"]["ListProducts"]["operationId"] == "list_products"
    assert_refs_resolve(merged)


def test_links_to_operations_the_gateway_does_not_serve_are_dropped(
    merged: dict[str, Any],
) -> None:
    links = merged["paths"]["/api/v1/products"]["post"]["responses"]["201"]["links"]
    assert "Health" not in links  # orders' /readyz is not routed


def test_a_component_referred_to_from_inside_another_is_kept() -> None:
    orders = copy.deepcopy(ORDERS_DOC)
    orders["components"]["schemas"]["Price"] = {"type": "integer"}
    orders["components"]["schemas"]["Priced"] = {
        "type": "object",
        "properties": {"price": {"$ref": "#/components/schemas/Price"}},
    }
    orders["paths"]["/api/v1/orders"]["get"]["responses"] = {
        "200": {
            "description": "ok",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Priced/properties/price"}
                }
            },
        }
    }
    merger = OpenAPIMerger(settings=GatewaySettings(redis_url="redis://unused"), upstreams={})
    merged = merger.merge(OWN_DOC, {"users": USERS_DOC, "orders": orders})
    assert {"Priced", "Price"} <= set(merged["components"]["schemas"])
    assert_refs_resolve(merged)


def test_merging_leaves_the_sources_unchanged() -> None:
    sources = {"users": copy.deepcopy(USERS_DOC), "orders": copy.deepcopy(ORDERS_DOC)}
    merger = OpenAPIMerger(settings=GatewaySettings(redis_url="redis://unused"), upstreams={})
    merger.merge(copy.deepcopy(OWN_DOC), sources)
    assert sources == {"users": USERS_DOC, "orders": ORDERS_DOC}


def test_operation_ids_stay_unique(merged: dict[str, Any]) -> None:
    ids = [
        op["operationId"]
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))
    assert "orders_register" in ids


def test_a_missing_upstream_is_named(merged: dict[str, Any]) -> None:
    merger = OpenAPIMerger(settings=GatewaySettings(redis_url="redis://unused"), upstreams={})
    partial = merger.merge(OWN_DOC, {"users": USERS_DOC, "orders": None})
    assert partial["x-shopstack-missing"] == ["orders"]
    assert "/api/v1/products" not in partial["paths"]
    assert_refs_resolve(partial)
    assert "/api/v1/auth/register" in partial["paths"]
    assert "x-shopstack-missing" not in merged


# -- through the gateway ----------------------------------------------------------------


class DocServer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0

    def app(self) -> web.Application:
        async def openapi(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.document)

        app = web.Application()
        app.router.add_get("/openapi.json", openapi)
        return app


@pytest.fixture
def orders_docs() -> DocServer:
    return DocServer(ORDERS_DOC)


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, orders_docs: DocServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_upstream(DocServer(USERS_DOC).app()) as users,
        serve_upstream(orders_docs.app()) as orders,
        make_gateway({"users": users, "orders": orders}) as client,
    ):
        yield client


async def test_openapi_json_merges_upstreams_and_own_routes(
    gateway: httpx.AsyncClient, orders_docs: DocServer
) -> None:
    response = await gateway.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/products" in document["paths"]
    overview = document["paths"]["/api/v1/me/overview"]["get"]
    assert overview["security"] == [{SECURITY_SCHEME: []}]
    # The gateway's own schema arrives with its components, and every reference resolves.
    assert "OverviewPublic" in document["components"]["schemas"]
    assert_refs_resolve(document)
    await gateway.get("/openapi.json")
    assert orders_docs.fetches == 1  # cached


async def test_openapi_json_without_an_upstream_still_answers(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> None:
    nowhere = NOWHERE
    async with (
        serve_upstream(DocServer(USERS_DOC).app()) as users,
        make_gateway({"users": users, "orders": nowhere}) as client,
    ):
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["x-shopstack-missing"] == ["orders"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


async def test_docs_page_uses_only_assets_the_gateway_serves(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = _Links()
    links.feed(page.text)
    assert links.urls, "the page loads no assets?"
    for url in links.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = await gateway.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    types = {
        url.rsplit(".", 1)[1]: (await gateway.get(url)).headers["content-type"]
        for url in links.urls
    }
    assert types["js"].startswith(("text/javascript", "application/javascript"))
    assert types["css"].startswith("text/css")
    # Nothing else on the page points off-site either (no CDN in inline scripts).
    assert not re.search(r"https?://", page.text)
    assert "url: '/openapi.json'" in page.text
    assert "/docs/oauth2-redirect" in page.text


async def test_swagger_ui_is_a_version_that_reads_openapi_3_1(gateway: httpx.AsyncClient) -> None:
    bundle = (await gateway.get("/docs/assets/swagger-ui-bundle.js")).text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.\d+"', bundle)
    assert version is not None
    assert (int(version.group(1)), int(version.group(2))) >= (5, 0)


async def test_oauth2_redirect_page_is_served(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "oauth2" in response.text.lower()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/docs/assets/nope.js", 404), ("POST", "/openapi.json", 405), ("GET", "/doc", 404)],
)
async def test_errors_on_own_routes_are_problems(
    gateway: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await gateway.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
