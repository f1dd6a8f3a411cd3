"""The WebSocket proxy through the wired gateway (ASGI, as a server drives it) in front of
aiohttp upstreams on loopback: refusals and unreachable upstreams at the handshake, messages
both ways, and each end going away first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMsgType, web

from shopstack_common.asgi import Message
from shopstack_gateway.main import GatewayApp
from shopstack_gateway.resources import resources_of

from .conftest import (
    NOWHERE,
    GatewayAppFactory,
    Handshake,
    Issuer,
    UpstreamServer,
    websocket_handshake,
    websocket_scope,
)

PATH = "/api/v1/orders/events"


class ClientEnd:
    """The client's side of one WebSocket to the gateway, as the ASGI server relays it."""

    def __init__(self, app: GatewayApp, headers: dict[str, str]) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.inbox.put_nowait({"type": "websocket.connect"})
        scope = websocket_scope(PATH, headers=headers.items())
        self.task = asyncio.create_task(app(scope, self.inbox.get, self.outbox.put))

    async def next(self) -> Message:
        return await asyncio.wait_for(self.outbox.get(), 10)

    def say(self, message: Message) -> None:
        self.inbox.put_nowait(message)

    async def ended(self) -> None:
        await asyncio.wait_for(self.task, 10)


@asynccontextmanager
async def client_end(app: GatewayApp, issuer: Issuer) -> AsyncIterator[ClientEnd]:
    end = ClientEnd(app, issuer.bearer())
    try:
        assert (await end.next())["type"] == "websocket.accept"
        yield end
    finally:
        end.say({"type": "websocket.disconnect", "code": 1000})
        await end.ended()


def upstream_of(handler: Any) -> web.Application:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


async def refuse(_: web.Request) -> web.Response:
    return web.Response(
        body=json.dumps({"type": "/problems/too-many-connections", "status": 503}).encode(),
        status=503,
        headers={
            "Content-Type": "application/problem+json",
            "Retry-After": "7",
            "X-Internal": "not for clients",
        },
    )


@pytest.mark.parametrize("denial_response", [True, False], ids=["denial", "close"])
async def test_an_upstream_refusal_reaches_the_client_as_it_came(
    make_gateway_app: GatewayAppFactory,
    serve_upstream: UpstreamServer,
    issuer: Issuer,
    denial_response: bool,
) -> None:
    async with (
        serve_upstream(upstream_of(refuse)) as upstream,
        make_gateway_app({"users": upstream, "orders": upstream}) as app,
    ):
        answer = await websocket_handshake(
            app, PATH, headers=issuer.bearer().items(), denial_response=denial_response
        )
    if not denial_response:
        assert answer.close_code == 4503
        return
    assert answer.status == 503
    assert answer.json() == {"type": "/problems/too-many-connections", "status": 503}
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "7"
    assert int(answer.headers["content-length"]) == len(answer.messages[1]["body"])
    assert "x-internal" not in answer.headers


@asynccontextmanager
async def garbling_server() -> AsyncIterator[str]:
    """Something that answers a WebSocket handshake with what is not HTTP."""

    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garble, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def nowhere() -> AsyncIterator[str]:
    yield NOWHERE


@pytest.mark.parametrize("upstream_at", [nowhere, garbling_server], ids=["refused", "garbled"])
async def test_an_upstream_that_cannot_open_the_websocket_is_a_502(
    make_gateway_app: GatewayAppFactory, issuer: Issuer, upstream_at: Any
) -> None:
    async with upstream_at() as upstream, make_gateway_app({"orders": upstream}) as app:
        answer = await websocket_handshake(app, PATH, headers=issuer.bearer().items())
    assert answer.status == 502
    assert answer.headers["retry-after"] == "1"
    body = answer.json()
    assert body["type"] == "/problems/upstream-unreachable"
    assert body["detail"].startswith("orders did not open the WebSocket: ")


class Echo:
    """An upstream that sends back each message as it came (text or bytes) until the client
    closes, and remembers the client's close code; told ``bye``, it closes with 1000."""

    def __init__(self) -> None:
        self.close_code: int | None = None
        self.closed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type is WSMsgType.TEXT and message.data == "bye":
                await socket.close(code=WSCloseCode.OK, message=b"as asked")
            elif message.type is WSMsgType.TEXT:
                await socket.send_str(message.data)
            elif message.type is WSMsgType.BINARY:
                await socket.send_bytes(message.data)
        self.close_code = socket.close_code
        self.closed.set()
        return socket


@pytest.fixture
async def echoed(
    make_gateway_app: GatewayAppFactory, serve_upstream: UpstreamServer
) -> AsyncIterator[tuple[GatewayApp, Echo]]:
    echo = Echo()
    async with (
        serve_upstream(upstream_of(echo.handle)) as upstream,
        make_gateway_app({"orders": upstream}) as app,
    ):
        yield app, echo


async def test_messages_flow_both_ways_and_the_clients_close_code_reaches_the_upstream(
    echoed: tuple[GatewayApp, Echo], issuer: Issuer
) -> None:
    app, echo = echoed
    async with client_end(app, issuer) as end:
        end.say({"type": "websocket.receive", "text": "hello"})
        assert await end.next() == {"type": "websocket.send", "text": "hello"}
        end.say({"type": "websocket.receive", "bytes": b"\x00\xff"})
        assert await end.next() == {"type": "websocket.send", "bytes": b"\x00\xff"}
        end.say({"type": "websocket.disconnect", "code": 4321})
        await end.ended()
    await asyncio.wait_for(echo.closed.wait(), 10)
    assert echo.close_code == 4321


async def test_the_upstreams_normal_close_reaches_the_client(
    echoed: tuple[GatewayApp, Echo], issuer: Issuer
) -> None:
    app, _ = echoed
    async with client_end(app, issuer) as end:
        end.say({"type": "websocket.receive", "text": "bye"})
        assert await end.next() == {"type": "websocket.close", "code": 1000, "reason": "as asked"}
        await end.ended()


async def test_an_upstream_gone_without_a_close_frame_is_a_1011(
    make_gateway_app: GatewayAppFactory, serve_upstream: UpstreamServer, issuer: Issuer
) -> None:
    async def vanish(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"status": "paid"}))
        assert request.transport is not None
        request.transport.abort()
        return socket

    async with (
        serve_upstream(upstream_of(vanish)) as upstream,
        make_gateway_app({"orders": upstream}) as app,
        client_end(app, issuer) as end,
    ):
        assert await end.next() == {"type": "websocket.send", "text": '{"status": "paid"}'}
        assert await end.next() == {"type": "websocket.close", "code": 1011, "reason": ""}
        await end.ended()


async def test_shutting_down_closes_both_ends_with_1001(
    echoed: tuple[GatewayApp, Echo], issuer: Issuer
) -> None:
    app, echo = echoed
    async with client_end(app, issuer) as end:
        resources_of(app.api).going_away.event.set()
        assert await end.next() == {"type": "websocket.close", "code": 1001, "reason": "reconnect"}
        await end.ended()
    await asyncio.wait_for(echo.closed.wait(), 10)
    assert echo.close_code == 1001


async def test_a_client_gone_before_the_handshake_opens_nothing_upstream(
    make_gateway_app: GatewayAppFactory, serve_upstream: UpstreamServer, issuer: Issuer
) -> None:
    asked: list[str] = []

    async def record(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(status=500)

    async with (
        serve_upstream(upstream_of(record)) as upstream,
        make_gateway_app({"orders": upstream}) as app,
    ):
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "websocket.disconnect", "code": 1001}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = websocket_scope(PATH, headers=issuer.bearer().items())
        await asyncio.wait_for(app(scope, receive, send), 10)
    assert Handshake(sent).messages == []
    assert asked == []
