"""Who is calling: a bearer token, when the request carries one, is verified against the signing
keys and becomes an ``Identity`` in the scope (for the rate limit, the proxy, the gateway's own
routes and the access log line).

A bad token is not refused here: the refusal is recorded in the scope and sent by dispatch,
after the rate limit, so that guessing counts against the caller's address. Other schemes
(Basic client credentials at the token endpoint) pass through untouched.

A WebSocket upgrade without a bearer token may carry a single-use ticket instead
(``?ticket=``, ``events/tickets.py``): redeemed here, it becomes the identity it was issued
to; an unknown, expired or used one is refused like a bad token (401 ``invalid-ticket``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from urllib.parse import parse_qs

from shopstack_common.asgi import SCOPE_TYPES, ASGIApp, Receive, Scope, Send
from shopstack_common.context import annotate_request
from shopstack_common.identity import Identity
from shopstack_common.problems import (
    AUTHENTICATION_REQUIRED,
    EVENTS_UNAVAILABLE,
    INVALID_TICKET,
    INVALID_TOKEN,
    TOKEN_KEYS_UNAVAILABLE,
    ProblemError,
)
from shopstack_gateway import metrics
from shopstack_gateway.events.tickets import TicketStore, TicketsUnavailableError
from shopstack_gateway.keys import KeysUnavailableError
from shopstack_gateway.tokens import InvalidTokenError, TokenVerifier

IDENTITY_SCOPE_KEY = "shopstack.identity"
REFUSAL_SCOPE_KEY = "shopstack.authentication_refusal"
REALM = "shopstack"
_BEARER = b"bearer "


def www_authenticate(error: str | None = None, description: str | None = None) -> str:
    """RFC 6750 §3: no error code when the request had no credentials at all."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return value


def authentication_required() -> ProblemError:
    """The answer to a request without a token where one is needed."""
    return ProblemError(
        AUTHENTICATION_REQUIRED,
        "This route needs a bearer access token.",
        headers={"WWW-Authenticate": www_authenticate()},
    )


def scope_identity(scope: Scope) -> Identity | None:
    identity: Identity | None = scope.get(IDENTITY_SCOPE_KEY)
    return identity


def authentication_refusal(scope: Scope) -> ProblemError | None:
    """The answer authentication decided on for a bad token, still to be sent."""
    refusal: ProblemError | None = scope.get(REFUSAL_SCOPE_KEY)
    return refusal


class AuthenticationMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Callable[[], TokenVerifier],
        tickets: Callable[[], TicketStore],
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.tickets = tickets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in SCOPE_TYPES:
            await self._authenticate(scope)
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> None:
        authorization: bytes | None = None
        authorizations = 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                authorizations += 1
        if authorization is None and scope["type"] == "websocket":
            await self._redeem_ticket(scope)
            return
        if authorization is None or authorization[:7].lower() != _BEARER:
            return
        token = authorization[7:].strip().decode("latin-1")
        try:
            if authorizations > 1 or not token:
                raise InvalidTokenError("malformed", "Send exactly one bearer token.")
            identity = await self.verifier().verify(token)
        except InvalidTokenError as error:
            metrics.AUTH_FAILURES.labels(error.reason).inc()
            scope[REFUSAL_SCOPE_KEY] = ProblemError(
                INVALID_TOKEN,
                error.description,
                headers={"WWW-Authenticate": www_authenticate("invalid_token", error.description)},
            )
            return
        except KeysUnavailableError as error:
            metrics.AUTH_FAILURES.labels("keys_unavailable").inc()
            scope[REFUSAL_SCOPE_KEY] = ProblemError(
                TOKEN_KEYS_UNAVAILABLE,
                "The gateway cannot verify access tokens right now.",
                headers={"Retry-After": str(max(1, math.ceil(error.retry_after)))},
            )
            return
        scope[IDENTITY_SCOPE_KEY] = identity
        annotate_request(user_id=identity.subject)

    async def _redeem_ticket(self, scope: Scope) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        tickets = query.get("ticket")
        if not tickets:
            return
        try:
            identity = await self.tickets().redeem(tickets[0]) if len(tickets) == 1 else None
        except TicketsUnavailableError:
            scope[REFUSAL_SCOPE_KEY] = ProblemError(
                EVENTS_UNAVAILABLE,
                "The gateway cannot redeem WebSocket tickets right now.",
                headers={"Retry-After": "1"},
            )
            return
        if identity is None:
            metrics.AUTH_FAILURES.labels("invalid_ticket").inc()
            scope[REFUSAL_SCOPE_KEY] = ProblemError(
                INVALID_TICKET, "The ticket is unknown, expired or already used."
            )
            return
        scope[IDENTITY_SCOPE_KEY] = identity
        annotate_request(user_id=identity.subject)
