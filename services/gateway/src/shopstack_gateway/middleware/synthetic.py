"""Synthetic traffic is told apart from real traffic: a request with ``X-Synthetic-Source``
(the load generator sends ``load``) has a ``synthetic`` field on its access log line and is
counted in ``shopstack_gateway_synthetic_requests_total`` by source, so a load test can be
filtered out of, or looked at in, the logs and the dashboards. The header travels on to the
upstreams unchanged; it grants nothing."""

from __future__ import annotations

from shopstack_common.asgi import SCOPE_TYPES, ASGIApp, Message, Receive, Scope, Send
from shopstack_common.context import request_context_var
from shopstack_common.metrics import status_class
from shopstack_gateway.metrics import SYNTHETIC_REQUESTS, SYNTHETIC_SOURCES

SYNTHETIC_HEADER = b"x-synthetic-source"
_KNOWN = frozenset(source.encode() for source in SYNTHETIC_SOURCES)


class SyntheticTrafficMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in SCOPE_TYPES:
            await self.app(scope, receive, send)
            return
        value = next((v for n, v in scope["headers"] if n == SYNTHETIC_HEADER), None)
        if value is None:
            await self.app(scope, receive, send)
            return
        source = (
            value.strip().lower().decode("latin-1") if value.strip().lower() in _KNOWN else "other"
        )
        context = request_context_var.get()
        if context is not None:
            context.fields["synthetic"] = source
        status = 500  # an app that raises before it answers is answered 500 further out

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            SYNTHETIC_REQUESTS.labels(source, status_class(status)).inc()
