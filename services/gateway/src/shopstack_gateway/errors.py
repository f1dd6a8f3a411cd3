"""The last stop for an unexpected error in the gateway's own routes.

Starlette's outermost layer answers such an error in plain text and raises it again; this
middleware sits inside it and answers problem+json instead, logging the error once. (Proxied
requests never enter FastAPI: the request-context middleware around everything covers them.)
"""

from __future__ import annotations

import logging

from shopstack_common.asgi import ASGIApp, Message, Receive, Scope, Send
from shopstack_gateway.problems import send_problem

logger = logging.getLogger("shopstack.errors")


class InternalErrorMiddleware:
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
