"""SIGTERM that drops nothing, for the ASGI services under uvicorn (one worker).

uvicorn's own shutdown closes every connection that has no request in progress. A proxy may
have just written a request on one (NGINX picks an idle connection from its pool): closing
it resets that request, and NGINX cannot resend a POST. ``DrainingServer`` instead closes the
listeners (new connections go to another instance), answers everything from then on with
``Connection: close``, and leaves idle connections to the keep-alive timer or to the proxy,
which closes its idle ones sooner. Whatever is still open after ``drain_seconds`` is shut down
the way uvicorn does, within the graceful timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time

import uvicorn

from shopstack_common.asgi import ASGIApp, Message, Receive, Scope, Send


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.draining = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        if not config.loaded:
            config.load()
        config.loaded_app = CloseWhenDraining(config.loaded_app, self)
        await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self.draining = True
        deadline = time.monotonic() + min(
            self.drain_seconds, self.config.timeout_graceful_shutdown or 0
        )
        # uvicorn's set of connections has no event to wait on; it polls the same way.
        while self.server_state.connections and not self.force_exit and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


class CloseWhenDraining:
    """Adds ``Connection: close`` to every answer once the server drains: uvicorn then closes
    the connection after the answer, so none is left that a proxy might reuse."""

    def __init__(self, app: ASGIApp, server: DrainingServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.server.draining:
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
