"""Plain ASGI middleware for the FastAPI services: request id, metrics and the access log."""

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
from shopstack_common.problem import PROBLEM_CONTENT_TYPE, problem_body

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

    It is also the one place an unhandled exception ends: logged once with its request id and
    answered as a 500 problem+json, so no client ever sees a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
        response_started = False
        header_value = context.request_id.encode()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != _REQUEST_ID_HEADER_BYTES
                ]
                headers.append((_REQUEST_ID_HEADER_BYTES, header_value))
                message = {**message, "headers": headers}
            await send(message)

        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response_started:
                raise  # Too late for an error body; the server closes the connection.
            status = 500
            await _send_internal_error(send_with_request_id)
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


async def _send_internal_error(send: Send) -> None:
    body = json.dumps(
        problem_body(500, detail="The server could not complete the request.")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
