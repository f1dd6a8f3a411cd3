"""Who answers, the last step of the edge.

1. A refusal authentication recorded (a bad token, or keys that cannot be fetched).
2. A path in the route table goes to the proxy directly, without Starlette's routing (its
   layers would be most of a proxied request's cost), once the route's token requirement is
   met: a route that is not public needs an identity, else 401.
3. Anything else goes on to the gateway's own FastAPI routes, which state their own
   requirements (``deps.py``).

A few paths inside a proxied prefix are the gateway's own (``own_paths``: the WebSocket
ticket, since the gateway is what redeems it); they go to its FastAPI routes.

WebSockets: the gateway's own routes are HTTP only, so an upgrade outside the route table is
refused as ``not-found``. An upgrade on a proxied route, once authenticated (bearer token or
ticket), rate-limited and past the token requirement like any request, goes to the WebSocket
proxy (``websocket_proxy.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from shopstack_common.asgi import SCOPE_TYPES, ASGIApp, Receive, Scope, Send, send_problem
from shopstack_common.identity import Identity
from shopstack_common.problems import NOT_FOUND, ProblemError
from shopstack_gateway import metrics
from shopstack_gateway.middleware.authentication import (
    authentication_refusal,
    authentication_required,
    scope_identity,
)
from shopstack_gateway.proxy import Proxy
from shopstack_gateway.routing import MATCH_SCOPE_KEY, Match, PublicRoutes, RouteTable
from shopstack_gateway.websocket_proxy import WebSocketProxy


class DispatchMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteTable,
        public: PublicRoutes,
        proxy: Callable[[], Proxy],
        websocket_proxy: Callable[[], WebSocketProxy],
        own_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.routes = routes
        self.public = public
        self.proxy = proxy
        self.websocket_proxy = websocket_proxy
        self.own_paths = own_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in SCOPE_TYPES:  # the lifespan: the gateway's own app runs it
            await self.app(scope, receive, send)
            return
        refusal = authentication_refusal(scope)
        if refusal is not None:
            await send_problem(scope, send, refusal)
            return
        path: str = scope["path"]
        match = scope[MATCH_SCOPE_KEY] = None if path in self.own_paths else self.routes.match(path)
        if match is None:
            if kind == "websocket":
                await send_problem(
                    scope, send, ProblemError(NOT_FOUND, f"No WebSocket is served at {path}.")
                )
            else:
                await self.app(scope, receive, send)
            return
        identity = scope_identity(scope)
        # A WebSocket handshake is a GET (RFC 6455 §4.1).
        if identity is None and not self.public.allows(scope.get("method", "GET"), path):
            metrics.AUTH_FAILURES.labels("missing").inc()
            await send_problem(scope, send, authentication_required())
        elif kind == "websocket":
            await self.websocket(scope, receive, send, match, identity)
        else:
            await self.proxy()(scope, receive, send, match, identity)

    async def websocket(
        self, scope: Scope, receive: Receive, send: Send, match: Match, identity: Identity | None
    ) -> None:
        """A WebSocket for ``match.upstream``, on behalf of ``identity``."""
        await self.websocket_proxy()(scope, receive, send, match.upstream, identity)
