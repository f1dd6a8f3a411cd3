"""Plain ASGI middleware for the FastAPI services: request id, metrics and the access log."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from shopstack_common.context import (
    REQUEST_ID_HEADER,
    RequestContext,
    accept_request_id,
    request_context_var,
)
from shopstack_common.metrics import HTTP_REQUESTS_IN_FLIGHT, UNMATCHED_ROUTE, observe_request
from shopstack_common.observability import log_access
from shopstack_common.problem import PROBLEM_CONTENT_TYPE, problem_body, problem_type

# The ASGI callable shapes, as Starlette spells them, without importing Starlette.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()
# An app that routes by itself (the gateway's proxy) names its route here.
ROUTE_SCOPE_KEY = "shopstack.route"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/products/{product_id}``), never the raw path,
    so metric label values stay few."""
    named = scope.get(ROUTE_SCOPE_KEY)
    if isinstance(named, str):
        return named
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


logger = logging.getLogger("shopstack.errors")


class RequestContextMiddleware:
    """Accepts or creates X-Request-ID, echoes it, and records one metric sample and one access
    log line per HTTP request (after the last body byte, so streamed responses are timed fully).

    Unhandled exceptions inside end in ``InternalErrorMiddleware``: a 500 problem+json that
    this middleware then counts and logs like any other answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = InternalErrorMiddleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_BYTES:
                incoming = value.decode("latin-1")
                break
        context = RequestContext(request_id=accept_request_id(incoming))
        token = request_context_var.set(context)
        started = time.perf_counter()
        status = 500
        header_value = context.request_id.encode()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != _REQUEST_ID_HEADER_BYTES
                ]
                headers.append((_REQUEST_ID_HEADER_BYTES, header_value))
                message = {**message, "headers": headers}
            await send(message)

        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            duration = time.perf_counter() - started
            route = route_template(scope)
            observe_request(route=route, method=scope["method"], status=status, duration=duration)
            log_access(
                method=scope["method"],
                route=route,
                path=scope["path"],
                status=status,
                duration=duration,
                fields=context.fields,
            )
            request_context_var.reset(token)


async def send_problem(
    send: Send,
    status: int,
    *,
    slug: str | None = None,
    type_: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Answer with a problem+json straight through ASGI ``send``: for code that runs below a
    framework's exception handlers (plain middleware, the gateway's proxy)."""
    body = json.dumps(
        problem_body(
            status,
            title=title,
            detail=detail,
            type_=type_ or (problem_type(slug) if slug else None),
            extra=extra,
        )
    ).encode()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class InternalErrorMiddleware:
    """Where an unhandled exception ends: logged once and answered as a 500 problem+json, so
    no client ever sees a stack trace. Starlette's outermost layer would answer in plain text,
    so an app that routes below it installs this inside it too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # too late for an error body; the server closes the connection
            await send_problem(send, 500, detail="The server could not complete the request.")
