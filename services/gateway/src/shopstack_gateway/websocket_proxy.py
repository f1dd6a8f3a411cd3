"""WebSockets to an upstream: the client's upgrade, authenticated by the edge chain, is
opened again to the upstream with the identity in the gateway's headers (as for HTTP), then
messages flow both ways until one side closes, and its close code reaches the other.

* The upstream's refusal of the handshake (401, 404, 429, 503 ...) is passed to the client
  as it came, status and problem+json body; an upstream that cannot be reached is 502.
* A ``ticket`` in the query (``events/tickets.py``) was the client's credential for the
  gateway and is not sent on.
* Flow control instead of buffers: a message is read from the upstream only once the client
  took the previous one (``max_queue`` bounds what the upstream connection holds), so a slow
  client slows its upstream down, which then disconnects it (orders: 4001).
* Heartbeats: the gateway pings the upstream every ``WEBSOCKET_PING_INTERVAL_SECONDS``;
  uvicorn pings the client likewise (``WS_PING_INTERVAL``), closing an end that stops
  answering.
* On SIGTERM (``shopstack_common.shutdown``) both ends are closed with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qsl, urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from shopstack_common.asgi import (
    WEBSOCKET_DENIAL_EXTENSION,
    Receive,
    Scope,
    Send,
    send_problem,
    websocket_close_code,
)
from shopstack_common.identity import Identity
from shopstack_common.problems import UPSTREAM_UNREACHABLE, ProblemError
from shopstack_common.shutdown import GoingAway
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.proxy import upstream_request_headers
from shopstack_gateway.upstreams import Upstream

TICKET_PARAMETER = "ticket"
CLOSE_GOING_AWAY = 1001
# What a WebSocket handshake of the gateway's own sets; the client's must not pass.
_HANDSHAKE_HEADERS = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
        "content-length",
    }
)


def upstream_url(upstream: Upstream, scope: Scope) -> str:
    base = upstream.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    query = [
        (name, value)
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        if name != TICKET_PARAMETER
    ]
    path: str = scope["path"]
    return base + path + (f"?{urlencode(query)}" if query else "")


class WebSocketProxy:
    def __init__(
        self, *, upstreams: dict[str, Upstream], settings: GatewaySettings, going_away: GoingAway
    ) -> None:
        self.upstreams = upstreams
        self.settings = settings
        self.going_away = going_away

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, upstream: str, identity: Identity | None
    ) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        target = self.upstreams[upstream]
        headers = [
            (name, value)
            for name, value in upstream_request_headers(
                scope, identity, keep_content_length=False
            ).items()
            if name.lower() not in _HANDSHAKE_HEADERS
        ]
        try:
            server = await connect(
                upstream_url(target, scope),
                additional_headers=headers,
                # The upstream's handshake is a request of its own (it checks the order,
                # claims a connection slot): it gets a request's time, not a connect's.
                open_timeout=target.settings.connect_timeout_seconds
                + target.settings.read_timeout_seconds,
                ping_interval=self.settings.websocket_ping_interval_seconds,
                ping_timeout=self.settings.websocket_ping_timeout_seconds,
                max_queue=self.settings.websocket_max_queue,
                compression=None,
                user_agent_header=None,
            )
        except InvalidStatus as refusal:
            await _pass_refusal(scope, send, refusal)
            return
        except (OSError, TimeoutError, WebSocketException) as error:
            await send_problem(
                scope,
                send,
                ProblemError(
                    UPSTREAM_UNREACHABLE,
                    f"{upstream} did not open the WebSocket: {type(error).__name__}.",
                    headers={"Retry-After": "1"},
                ),
            )
            return
        async with server:
            await send({"type": "websocket.accept"})
            with self.going_away.connection():
                await self._relay(receive, send, server)

    async def _relay(self, receive: Receive, send: Send, server: ClientConnection) -> None:
        async def downstream() -> None:
            """Upstream to client, one message at a time; then its close code."""
            try:
                async for data in server:
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
            except ConnectionClosed:
                pass
            code = server.close_code or 1011
            if code in {1005, 1006}:  # no close frame: the upstream went away
                code = 1011
            with contextlib.suppress(Exception):
                await send(
                    {"type": "websocket.close", "code": code, "reason": server.close_reason or ""}
                )

        async def upstream() -> None:
            """Client to upstream; a client's close is passed on."""
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    await server.close(message.get("code", 1000))
                    return
                if message.get("text") is not None:
                    await server.send(message["text"])
                elif message.get("bytes") is not None:
                    await server.send(message["bytes"])

        async def away() -> None:
            await self.going_away.event.wait()
            # The client's close goes first: downstream would otherwise pass on the code of
            # the upstream's reply, which need not be 1001 (aiohttp answers 1000).
            with contextlib.suppress(Exception):
                await send(
                    {"type": "websocket.close", "code": CLOSE_GOING_AWAY, "reason": "reconnect"}
                )
            await server.close(CLOSE_GOING_AWAY, "gateway shutting down")

        tasks = [asyncio.create_task(part()) for part in (downstream, upstream, away)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def _pass_refusal(scope: Scope, send: Send, refusal: InvalidStatus) -> None:
    response = refusal.response
    if WEBSOCKET_DENIAL_EXTENSION not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": websocket_close_code(response.status_code)})
        return
    body = response.body or b""
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.raw_items()
        if name.lower() in {"content-type", "retry-after", "www-authenticate"}
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    await send(
        {
            "type": "websocket.http.response.start",
            "status": response.status_code,
            "headers": headers,
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
