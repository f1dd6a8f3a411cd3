"""The hot path, as one plain ASGI middleware: identity, rate limit, then proxy or own routes.

For every HTTP request, in this order:

1. Every ``X-Shopstack-*`` header from the client is removed (on every route, public or not).
2. A bearer token, when sent, is verified; the identity goes into the scope (for the proxy and
   the gateway's own routes) and onto the access log line.
3. The rate limit is checked (one Redis round trip): the token endpoint's bucket per client
   address, else per caller when authenticated, else per client address. Over it: 429.
4. A bad token: 401. A proxied path that is not public and has no identity: 401.
5. A path in the route table goes to the proxy directly, without Starlette's routing; anything
   else goes on to the gateway's own FastAPI routes (which require identity themselves).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable

from shopstack_common.asgi import (
    ROUTE_SCOPE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    send_problem,
)
from shopstack_common.context import annotate_request
from shopstack_common.identity import IDENTITY_HEADER_PREFIX, Identity
from shopstack_gateway import metrics
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.keys import KeysUnavailableError
from shopstack_gateway.ratelimit import (
    Decision,
    Policy,
    RateLimiter,
    RateLimiterUnavailableError,
)
from shopstack_gateway.routing import PublicRoutes, RouteTable
from shopstack_gateway.runtime import Runtime
from shopstack_gateway.tokens import InvalidTokenError

IDENTITY_SCOPE_KEY = "shopstack.identity"
REALM = "shopstack"
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
_IDENTITY_PREFIX = IDENTITY_HEADER_PREFIX.encode()

# An answer decided early (a bad token) but sent later (after the rate limit).
Refusal = Callable[[Send], Awaitable[None]]


def www_authenticate(error: str | None = None, description: str | None = None) -> str:
    """RFC 6750 §3: no error code when the request had no credentials at all."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return value


def scope_identity(scope: Scope) -> Identity | None:
    identity: Identity | None = scope.get(IDENTITY_SCOPE_KEY)
    return identity


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, settings: GatewaySettings, runtime: Callable[[], Runtime]
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.routes = RouteTable(settings.routes)
        self.public = PublicRoutes(settings.public_routes)
        limits = settings.rate_limit
        self.address_policy = Policy.from_settings("address", limits.address)
        self.user_policy = Policy.from_settings("user", limits.user)
        self.token_policy = Policy.from_settings("token", limits.token)
        self.token_paths = frozenset(p.rstrip("/") for p in limits.token_paths)
        self.exempt_paths = frozenset(limits.exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = self.runtime()
        path: str = scope["path"]
        match = self.routes.match(path)
        if match is not None:
            # The access log and metrics name the route, whoever answers.
            scope[ROUTE_SCOPE_KEY] = f"{match.prefix}/*"
        identity, refusal = await self._authenticate(scope, runtime)
        if runtime.limiter is not None and path not in self.exempt_paths:
            limited_send = await self._rate_limit(scope, send, runtime.limiter, identity)
            if limited_send is None:
                return
            send = limited_send
        if refusal is not None:
            await refusal(send)
            return
        if match is None:
            await self.app(scope, receive, send)
        elif identity is None and not self.public.allows(scope["method"], path):
            metrics.AUTH_FAILURES.labels("missing").inc()
            await send_problem(
                send, 401, slug="authentication-required", title="Authentication required",
                detail="This route needs a bearer access token.",
                headers={"WWW-Authenticate": www_authenticate()},
            )  # fmt: skip
        else:
            await runtime.proxy(scope, receive, send, match, identity)

    async def _authenticate(
        self, scope: Scope, runtime: Runtime
    ) -> tuple[Identity | None, Refusal | None]:
        """Strip the client's identity headers; verify its bearer token, if it sent one.

        A bad token is not refused here but after the rate limit, so guessing counts against it.
        """
        authorization: bytes | None = None
        authorizations = 0
        spoofed = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                authorizations += 1
            elif name.startswith(_IDENTITY_PREFIX):
                spoofed = True
        if spoofed:
            scope["headers"] = [
                (n, v) for n, v in scope["headers"] if not n.startswith(_IDENTITY_PREFIX)
            ]
        # Other schemes (Basic client credentials at the token endpoint) pass through as they are.
        if authorization is None or authorization[:7].lower() != b"bearer ":
            return None, None
        token = authorization[7:].strip().decode("latin-1")
        try:
            if authorizations > 1 or not token:
                raise InvalidTokenError("malformed", "Send exactly one bearer token.")
            identity = await runtime.verifier.verify(token)
        except InvalidTokenError as error:
            metrics.AUTH_FAILURES.labels(error.reason).inc()
            return None, functools.partial(
                send_problem, status=401, slug="invalid-token", title="Invalid access token",
                detail=error.description,
                headers={"WWW-Authenticate": www_authenticate("invalid_token", error.description)},
            )  # fmt: skip
        except KeysUnavailableError as error:
            metrics.AUTH_FAILURES.labels("keys_unavailable").inc()
            return None, functools.partial(
                send_problem, status=503, slug="token-keys-unavailable",
                detail="The gateway cannot verify access tokens right now.",
                headers={"Retry-After": str(max(1, math.ceil(error.retry_after)))},
            )  # fmt: skip
        scope[IDENTITY_SCOPE_KEY] = identity
        annotate_request(user_id=identity.subject)
        return identity, None

    async def _rate_limit(
        self, scope: Scope, send: Send, limiter: RateLimiter, identity: Identity | None
    ) -> Send | None:
        """The ``send`` to answer with (adding the RateLimit headers), or None when this
        middleware already answered (429, or 503 when the limiter fails closed)."""
        if scope["path"].rstrip("/") in self.token_paths:
            policy, partition = self.token_policy, _client_address(scope)
        elif identity is not None:
            policy, partition = self.user_policy, identity.subject
        else:
            policy, partition = self.address_policy, _client_address(scope)
        try:
            decision = await limiter.check(policy, partition)
        except RateLimiterUnavailableError:
            await send_problem(
                send, 503, slug="rate-limiter-unavailable",
                detail="The gateway cannot check rate limits right now.",
                headers={"Retry-After": "1"},
            )  # fmt: skip
            return None
        if decision is None:
            return send
        if not decision.allowed:
            await _too_many_requests(send, decision)
            return None
        return _with_headers(send, decision)


def _client_address(scope: Scope) -> str:
    # Behind NGINX this is the real client: uvicorn's proxy-headers support takes it from
    # X-Forwarded-For when the peer is a trusted proxy (FORWARDED_ALLOW_IPS).
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _too_many_requests(send: Send, decision: Decision) -> None:
    metrics.RATE_LIMITED.labels(decision.policy.name).inc()
    await send_problem(
        send, 429, type_=QUOTA_EXCEEDED, title="Too Many Requests",
        detail=f"Rate limit {decision.policy.name!r} exceeded: "
        f"{decision.policy.limit} requests per {decision.policy.window_seconds} s. "
        f"Retry in {decision.retry_after} s.",
        headers=[(k.decode(), v.decode()) for k, v in decision.headers()],
        extra={"violated-policies": [decision.policy.name]},
    )  # fmt: skip


def _with_headers(send: Send, decision: Decision) -> Send:
    extra = decision.headers()

    async def send_with_rate_limit(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_rate_limit
