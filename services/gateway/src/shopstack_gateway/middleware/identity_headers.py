"""The one place that removes client-sent identity headers: whatever starts with
``X-Shopstack-`` is the gateway's to set, on every route, public or not."""

from __future__ import annotations

from shopstack_common.asgi import SCOPE_TYPES, ASGIApp, Receive, Scope, Send
from shopstack_common.identity import IDENTITY_HEADER_PREFIX

_PREFIX = IDENTITY_HEADER_PREFIX.encode()


class StripIdentityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in SCOPE_TYPES:
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            # ASGI servers hand header names over lower-cased. Most requests carry none of
            # these, so the list is copied only when there is something to remove.
            for name, _ in headers:
                if name.startswith(_PREFIX):
                    scope["headers"] = [(n, v) for n, v in headers if not n.startswith(_PREFIX)]
                    break
        await self.app(scope, receive, send)
