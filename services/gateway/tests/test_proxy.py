"""The proxy against in-process upstreams: streaming, headers, limits, and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from aiohttp import web

from shopstack_gateway.proxy import WHOLE_BODY_BYTES, public_location
from shopstack_gateway.upstreams import origin_of

from .conftest import NOWHERE, GatewayFactory, Issuer, UpstreamServer


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body_length": len(body),
            },
            status=201 if request.method == "POST" else 200,
            headers={"X-Upstream": "yes", "Connection": "keep-alive, X-Private", "X-Private": "1"},
        )

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for index in range(5):
            await response.write(f"chunk-{index}\n".encode())
        await response.write_eof()
        return response

    async def broken(request: web.Request) -> web.StreamResponse:
        # Promises a body of ?length= bytes, sends 10 of them and is gone (or stalls).
        response = web.StreamResponse()
        response.content_length = int(request.query.get("length", "1000"))
        await response.prepare(request)
        await response.write(b"0123456789")
        if request.query.get("stall"):
            await asyncio.sleep(2)
        assert request.transport is not None
        request.transport.abort()
        return response

    async def teapot(_: web.Request) -> web.Response:
        return web.json_response({"detail": "short and stout"}, status=418)

    async def readyz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def redirect(request: web.Request) -> web.Response:
        # What a service does behind a proxy that does not tell it the public host: its own
        # origin (from the Host header the gateway's client sent) in an absolute URL.
        own = f"{request.url.origin()}/api/v1/products?page=2#top"
        elsewhere = request.query.get("to")
        raise web.HTTPTemporaryRedirect(
            location=elsewhere or own, headers={"Content-Location": f"{request.url.origin()}/x"}
        )

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/products/slow", slow)
    app.router.add_get("/api/v1/products/stream", stream)
    app.router.add_get("/api/v1/products/teapot", teapot)
    app.router.add_get("/api/v1/products/broken", broken)
    app.router.add_get("/api/v1/products/", redirect)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_upstream(echo_app()) as users,
        serve_upstream(echo_app()) as orders,
        make_gateway({"users": users, "orders": orders}, read_timeout_seconds=0.5) as client,
    ):
        yield client


async def test_get_is_proxied_with_query_and_status(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/products?sort=price&limit=5")
    assert response.status_code == 200
    assert response.json()["path"] == "/api/v1/products?sort=price&limit=5"
    assert response.headers["x-upstream"] == "yes"


async def test_upstream_status_and_body_pass_through_unchanged(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/products/teapot")
    assert response.status_code == 418
    assert response.json() == {"detail": "short and stout"}


async def test_post_body_streams_through(gateway: httpx.AsyncClient, issuer: Issuer) -> None:
    payload = b"x" * 300_000
    response = await gateway.post("/api/v1/orders", content=payload, headers=issuer.bearer())
    assert response.status_code == 201
    assert response.json()["body_length"] == len(payload)
    assert response.json()["headers"]["Content-Length"] == str(len(payload))


async def test_chunked_request_body_streams_through(
    gateway: httpx.AsyncClient, issuer: Issuer
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    response = await gateway.post("/api/v1/orders", content=chunks(), headers=issuer.bearer())
    assert response.json()["body_length"] == 10_000


async def test_streamed_response_arrives_whole(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/products/stream")
    assert response.text == "".join(f"chunk-{i}\n" for i in range(5))


async def test_an_upstream_gone_in_the_middle_of_a_small_answer_is_502_problem(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/v1/products/broken")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/upstream-unreachable")


async def test_an_upstream_stalled_in_the_middle_of_a_small_answer_is_504_problem(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/v1/products/broken", params={"stall": "1"})
    assert response.status_code == 504
    assert response.json()["type"].endswith("/upstream-timeout")


async def test_a_large_answer_streams_so_a_break_in_it_cuts_the_connection(
    gateway: httpx.AsyncClient,
) -> None:
    # The status and headers went out already: the proxy raises, and the server (uvicorn)
    # cuts the client's connection, so the client knows the body is incomplete.
    with pytest.raises(aiohttp.ClientPayloadError):
        await gateway.get("/api/v1/products/broken", params={"length": WHOLE_BODY_BYTES + 1})


async def test_head_answers_with_the_length_and_no_body(gateway: httpx.AsyncClient) -> None:
    response = await gateway.head("/api/v1/products")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) > 0
    assert response.content == b""


async def test_forwarding_headers_are_set(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(
        "/api/v1/products",
        headers={
            "X-Forwarded-For": "198.51.100.7",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "gopher",
        },
    )
    headers = {k.lower(): v for k, v in response.json()["headers"].items()}
    assert headers["x-forwarded-for"] == "198.51.100.7, 203.0.113.9"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "shop.example"
    assert headers["x-request-id"] == response.headers["x-request-id"]


async def test_a_client_already_at_the_end_of_the_chain_is_not_listed_twice(
    gateway: httpx.AsyncClient,
) -> None:
    # What NGINX sends: the chain ending with the client, whom uvicorn then reports as the peer.
    response = await gateway.get(
        "/api/v1/products", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    )
    assert response.json()["headers"]["X-Forwarded-For"] == "198.51.100.7, 203.0.113.9"


async def test_request_id_is_accepted_and_returned(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/products", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["headers"]["X-Request-ID"] == "abc-123"


async def test_traceparent_carries_the_gateways_span(gateway: httpx.AsyncClient) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
    response = await gateway.get("/api/v1/products", headers={"traceparent": incoming})
    forwarded = response.json()["headers"]["traceparent"]
    version, forwarded_trace, parent_span, _flags = forwarded.split("-")
    # The same trace, continued from a span of the gateway's own.
    assert (version, forwarded_trace) == ("00", trace_id)
    assert parent_span != "00f067aa0ba902b7"


async def test_hop_by_hop_headers_are_dropped_both_ways(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(
        "/api/v1/products", headers={"Connection": "X-Secret", "X-Secret": "1", "TE": "trailers"}
    )
    seen = {k.lower() for k in response.json()["headers"]}
    assert "x-secret" not in seen
    assert "te" not in seen
    assert "x-private" not in response.headers


async def test_upstream_date_and_server_are_not_repeated(gateway: httpx.AsyncClient) -> None:
    # The server running the gateway writes its own Date; a second one is a protocol error
    # NGINX logs on every response. (Here, in-process, nothing adds one back.)
    response = await gateway.get("/api/v1/products")
    assert response.status_code == 200
    assert "date" not in response.headers
    assert "server" not in response.headers


@pytest.mark.parametrize("path", ["/api/v2/anything", "/api/v1/usersettings", "/"])
async def test_unknown_path_is_404_problem(gateway: httpx.AsyncClient, path: str) -> None:
    response = await gateway.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_body_over_the_limit_is_413(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, issuer: Issuer
) -> None:
    async with (
        serve_upstream(echo_app()) as upstream,
        make_gateway({"users": upstream, "orders": upstream}, max_body_bytes=1000) as client,
    ):
        declared = await client.post("/api/v1/orders", content=b"z" * 1001, headers=issuer.bearer())
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert declared.json()["type"].endswith("/body-too-large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"z" * 400

        streamed = await client.post("/api/v1/orders", content=chunks(), headers=issuer.bearer())
        assert streamed.status_code == 413

        within = await client.post("/api/v1/orders", content=b"z" * 1000, headers=issuer.bearer())
        assert within.status_code == 201


async def test_dead_upstream_is_502_problem(make_gateway: GatewayFactory) -> None:
    nowhere = NOWHERE
    async with make_gateway({"users": nowhere, "orders": nowhere}) as client:
        response = await client.get("/api/v1/products")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/upstream-unreachable")
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_slow_upstream_is_504_problem(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/products/slow")
    assert response.status_code == 504
    assert response.json()["type"].endswith("/upstream-timeout")
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_healthz_needs_nothing(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_a_location_on_the_upstreams_origin_becomes_a_path(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/v1/products/")
    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/products?page=2#top"
    assert response.headers["content-location"] == "/x"
    assert "127.0.0.1" not in str(response.headers)


@pytest.mark.parametrize(
    "location", ["https://pay.example/checkout?o=1", "/already/relative", "../up"]
)
async def test_any_other_location_passes_unchanged(
    gateway: httpx.AsyncClient, location: str
) -> None:
    response = await gateway.get("/api/v1/products/", params={"to": location})
    assert response.headers["location"] == location


@pytest.mark.parametrize(
    ("location", "public"),
    [
        ("http://orders:8000/a?b=c", "/a?b=c"),
        ("HTTP://ORDERS:8000/a", "/a"),
        ("http://orders:8000", "/"),
        ("http://orders:8001/a", "http://orders:8001/a"),
        ("https://orders:8000/a", "https://orders:8000/a"),
        ("http://orders.other:8000/a", "http://orders.other:8000/a"),
        ("http://[bad", "http://[bad"),
    ],
)
def test_public_location(location: str, public: str) -> None:
    assert public_location(location, origin_of("http://orders:8000")) == public


def test_default_ports_are_the_same_origin() -> None:
    assert origin_of("http://orders/") == origin_of("http://orders:80/x")
    assert public_location("https://orders/a", origin_of("https://orders:443")) == "/a"
