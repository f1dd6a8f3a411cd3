"""Plain ASGI pieces for the ASGI services: the request context (request id, metrics, access
log), the 500 catch-all, and ``send_problem`` for code that answers below a framework.

Each handles ``http`` and ``websocket`` scopes. A WebSocket handshake that is refused gets the
same problem+json an HTTP request would, as an HTTP answer to the upgrade (the ASGI WebSocket
Denial Response extension) where the server supports it; where it does not, the handshake is
closed before it is accepted with close code ``4000 + status`` (4401, 4429, 4503, ...), and
the server answers the upgrade with 403.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shopstack_common.context import (
    REQUEST_ID_HEADER,
    RequestContext,
    accept_request_id,
    request_context_var,
)
from shopstack_common.metrics import HTTP_REQUESTS_IN_FLIGHT, UNMATCHED_ROUTE, observe_request
from shopstack_common.observability import log_access
from shopstack_common.problems import INTERNAL_ERROR, PROBLEM_CONTENT_TYPE, ProblemError
from shopstack_common.telemetry import name_server_span
from shopstack_common.urlencoded import refuse_undecodable

# The ASGI callable shapes, as Starlette spells them, without importing Starlette.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Names the route of a request the framework did not route (the gateway's proxied paths).
RouteOf = Callable[[Scope], str | None]

SCOPE_TYPES = frozenset({"http", "websocket"})
WEBSOCKET_DENIAL_EXTENSION = "websocket.http.response"
WEBSOCKET_CLOSE_CODE_BASE = 4000
# RFC 6455 §5.5: a close frame's reason fits in 123 bytes.
_MAX_CLOSE_REASON_BYTES = 123
# What a server answers to an upgrade that is closed before it was accepted.
_CLOSED_BEFORE_ACCEPT_STATUS = 403
_WEBSOCKET_ACCEPTED_STATUS = 101

_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()
# The messages that start an answer, and so carry its headers.
ANSWER_STARTS = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)
_HTTP_ANSWER_START = frozenset({"http.response.start"})
_WEBSOCKET_ANSWER_STARTS = ANSWER_STARTS | {"websocket.close"}

logger = logging.getLogger("shopstack.errors")


def websocket_close_code(status: int) -> int:
    """The close code of a refused WebSocket handshake when no HTTP answer can be sent."""
    return WEBSOCKET_CLOSE_CODE_BASE + status


def route_template(scope: Scope, route_of: RouteOf | None = None) -> str:
    """The matched route's path template (``/api/v1/products/{product_id}``), never the raw path,
    so metric label values stay few."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    named = route_of(scope) if route_of is not None else None
    return named or UNMATCHED_ROUTE


def _with_request_id(message: Message, request_id: bytes) -> Message:
    headers = [(k, v) for k, v in message.get("headers", []) if k != _REQUEST_ID_HEADER_BYTES]
    headers.append((_REQUEST_ID_HEADER_BYTES, request_id))
    return {**message, "headers": headers}


def _status_of(message: Message) -> int | None:
    kind = message["type"]
    if kind in ("http.response.start", "websocket.http.response.start"):
        status: int = message["status"]
        return status
    if kind == "websocket.accept":
        return _WEBSOCKET_ACCEPTED_STATUS
    return None


class RequestContextMiddleware:
    """Accepts or creates X-Request-ID, echoes it, and records one access log line per HTTP
    request or WebSocket connection (after the last byte, so streamed responses are timed fully)
    and, for HTTP, one metric sample. A WebSocket's lifetime is not a request's latency, so it
    stays out of the HTTP metrics.

    Unhandled exceptions inside end in ``InternalErrorMiddleware``: a 500 problem+json that
    this middleware then counts and logs like any other answer."""

    def __init__(self, app: ASGIApp, *, route_of: RouteOf | None = None) -> None:
        self.app = InternalErrorMiddleware(app)
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in SCOPE_TYPES:
            await self.app(scope, receive, send)
            return

        incoming = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_BYTES:
                incoming = value.decode("latin-1")
                break
        context = RequestContext(request_id=accept_request_id(incoming))
        is_http = kind == "http"
        if not is_http:
            context.fields["protocol"] = "websocket"
        token = request_context_var.set(context)
        started = time.perf_counter()
        status = 500
        header_value = context.request_id.encode()

        # The handshake of a WebSocket is a GET (RFC 6455 §4.1).
        method: str = scope.get("method", "GET")
        # One sender per scope type, so that the HTTP one, on every proxied request's path,
        # does no more than it must.
        if is_http:

            async def send_with_request_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message = _with_request_id(message, header_value)
                    # Routed by now; the server span ends with the answer's last byte.
                    route = route_template(scope, self.route_of)
                    name_server_span(method, None if route == UNMATCHED_ROUTE else route)
                await send(message)

        else:

            async def send_with_request_id(message: Message) -> None:
                nonlocal status
                if message["type"] in ANSWER_STARTS:
                    status = _status_of(message) or status
                    message = _with_request_id(message, header_value)
                elif message["type"] == "websocket.close" and status == 500:
                    status = _CLOSED_BEFORE_ACCEPT_STATUS
                await send(message)

        if is_http:
            HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope, self.route_of)
            if is_http:
                HTTP_REQUESTS_IN_FLIGHT.dec()
                observe_request(route=route, method=method, status=status, duration=duration)
            log_access(
                method=method,
                route=route,
                path=scope["path"],
                status=status,
                duration=duration,
                fields=context.fields,
            )
            request_context_var.reset(token)


async def send_problem(scope: Scope, send: Send, error: ProblemError) -> None:
    """Answer with ``error`` as problem+json straight through ASGI ``send``: for code that runs
    below a framework's exception handlers (plain middleware, the gateway's proxy).

    A WebSocket handshake gets the same answer through the Denial Response extension, or, on a
    server without it, a close before accept with ``websocket_close_code(status)``."""
    if scope["type"] == "websocket" and WEBSOCKET_DENIAL_EXTENSION not in (
        scope.get("extensions") or {}
    ):
        reason = (error.detail or error.problem.title).encode()[:_MAX_CLOSE_REASON_BYTES]
        await send(
            {
                "type": "websocket.close",
                "code": websocket_close_code(error.status),
                "reason": reason.decode(errors="ignore"),
            }
        )
        return
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in error.headers.items()
    ]
    prefix = "http" if scope["type"] == "http" else "websocket.http"
    await send({"type": f"{prefix}.response.start", "status": error.status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})


class InternalErrorMiddleware:
    """Where an unhandled exception ends: logged once and answered as a 500 problem+json, so
    no client ever sees a stack trace. Starlette's outermost layer would answer in plain text,
    so an app that routes below it installs this inside it too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in SCOPE_TYPES:
            await self.app(scope, receive, send)
            return
        started = False
        # A WebSocket's answer has begun once it is accepted, refused or closed.
        begins = _HTTP_ANSWER_START if scope["type"] == "http" else _WEBSOCKET_ANSWER_STARTS

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] in begins:
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception(
                "unhandled error in %s %s", scope.get("method", "WEBSOCKET"), scope["path"]
            )
            if started:
                raise  # too late for an error body; the server closes the connection
            failure = ProblemError(INTERNAL_ERROR, "The server could not complete the request.")
            await send_problem(scope, send, failure)


class QueryTextMiddleware:
    """Refuses a query string that is not UTF-8 text (``shopstack_common.urlencoded``) with
    its 400 problem, before the framework decodes it its own way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in SCOPE_TYPES:
            try:
                refuse_undecodable(scope.get("query_string", b""), "query")
            except ProblemError as error:
                await send_problem(scope, send, error)
                return
        await self.app(scope, receive, send)
