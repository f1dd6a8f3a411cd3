"""The gateway's developer surface and edge rules, through NGINX on a running `make up`."""

import asyncio
import json
import socket
import uuid
from html.parser import HTMLParser

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.e2e


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


def _raw(url: str, headers: bytes) -> httpx.Response:
    """A request httpx would not send, written to NGINX's socket as bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/products HTTP/1.1\r\n" + headers + b"Connection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    return httpx.Response(
        int(status_line.split()[1]),
        headers=[tuple(field.split(": ", 1)) for field in fields],
        content=body,
    )


def test_docs_openapi_and_edge_rules_through_nginx(platform) -> None:  # type: ignore[no-untyped-def]
    platform.start()
    with httpx.Client(base_url=platform.url, timeout=10) as client:
        # One merged document: both services' paths, as clients reach them, and the token flow.
        document = client.get("/openapi.json").json()
        assert "x-shopstack-missing" not in document
        assert {"/api/v1/auth/register", "/api/v1/products", "/api/v1/me/overview"} <= set(
            document["paths"]
        )
        flow = document["components"]["securitySchemes"]["OAuth2Password"]["flows"]["password"]
        assert flow["tokenUrl"] == "/api/v1/auth/token"

        # Swagger UI loads only what the gateway serves itself, and all of it arrives via NGINX.
        page = client.get("/docs")
        assert page.status_code == 200
        assets = _Assets()
        assets.feed(page.text)
        assert assets.urls
        for url in assets.urls:
            assert url.startswith("/"), url
            assert client.get(url).status_code == 200, url

        # A write without a token stops at the gateway with a challenge.
        refused = client.post("/api/v1/products", json={"sku": "X"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.get("/api/v1/me/overview").status_code == 401

        # A public read reaches orders and carries the rate-limit fields.
        request_id = f"e2e-edge-{uuid.uuid4().hex}"
        missing = client.get(
            f"/api/v1/products/{uuid.uuid4()}", headers={"X-Request-ID": request_id}
        )
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] == request_id
        assert missing.headers["ratelimit-policy"] == '"address";q=120;w=60'
        assert missing.headers["ratelimit"].startswith('"address";r=')

        # Every problem's type can be followed through NGINX, NGINX's own answers' included.
        registry = client.get("/problems")
        assert registry.status_code == 200
        slugs = {item["slug"]: item for item in registry.json()["items"]}
        too_large = client.post("/api/v1/auth/register", content=b"x" * (9 * 1024 * 1024))
        hidden = client.get("/metrics")
        unknown = client.get("/no-such-page")
        # The gateway's own answers and NGINX's.
        for answer in (refused, unknown, too_large, hidden):
            problem = answer.json()
            described = client.get(problem["type"])
            assert described.status_code == 200, problem
            assert described.json()["title"] == problem["title"], problem
            assert described.json()["status"] == answer.status_code
        assert (too_large.status_code, hidden.status_code, unknown.status_code) == (413, 404, 404)

        # What NGINX refuses before any location is chosen speaks problem+json too.
        trace = client.request("TRACE", "/api/v1/products")
        assert trace.status_code == 405
        assert "GET" in trace.headers["allow"]
        refusals = [
            ("method-not-allowed", trace),
            ("uri-too-long", client.get("/api/v1/products?q=" + "a" * 9000)),
            ("not-found", client.get("/_edge/body-too-large")),
            ("malformed-request", _raw(platform.url, b"Host: a\r\nHost: b\r\n")),
            # A header too large is answered as a request line too long.
            ("uri-too-long", client.get("/", headers={"X-Padding": "a" * 9000})),
            ("not-implemented", _raw(platform.url, b"Host: a\r\nTransfer-Encoding: gzip\r\n")),
        ]
        for slug, answer in refusals:
            assert answer.headers["content-type"] == "application/problem+json", slug
            problem = answer.json()
            assert problem["type"] == f"/problems/{slug}", problem
            assert problem["status"] == answer.status_code == slugs[slug]["status"], problem
        assert {"body-too-large", "gateway-unavailable", "authentication-required"} <= set(slugs)
        page = client.get("/problems/out-of-stock", headers={"Accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html")

    # A WebSocket upgrade passes NGINX and is refused by the gateway like a request.
    async def upgrade_without_a_token() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refusal:
            async with connect(platform.url.replace("http", "ws") + "/api/v1/orders/events"):
                pass
        return refusal.value

    websocket = asyncio.run(upgrade_without_a_token()).response
    assert websocket.status_code == 401
    assert json.loads(websocket.body or b"")["type"] == "/problems/authentication-required"
    assert platform.stop() == 0

    # The gateway's access log line for that request says what happened, and to whom it went.
    # With SHOPSTACK_LOG_FORMAT=json every line is one JSON object.
    lines = [json.loads(line) for line in platform.log().splitlines() if request_id in line]
    access = [
        line
        for line in lines
        if line["service"] == "gateway" and line["logger"] == "shopstack.access"
    ]
    assert len(access) == 1, lines
    entry = access[0]
    assert entry["route"] == "/api/v1/products/*"
    assert entry["upstream"] == "orders"
    assert entry["status"] == 404
    assert entry["duration_ms"] >= 0
