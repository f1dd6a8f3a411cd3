"""One rate-limit bucket per request (or WebSocket upgrade), checked in Redis: the token
endpoint's per client address, else the caller's when authenticated, else the client address's.
Over the limit: 429 with ``Retry-After`` and the RateLimit fields; within it, the answer carries
the RateLimit fields. Probes and scrapes (``exempt_paths``) are never limited."""

from __future__ import annotations

from collections.abc import Callable

from shopstack_common.asgi import (
    ANSWER_STARTS,
    SCOPE_TYPES,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    send_problem,
)
from shopstack_common.problems import QUOTA_EXCEEDED, RATE_LIMITER_UNAVAILABLE, ProblemError
from shopstack_gateway import metrics
from shopstack_gateway.config import RateLimitSettings
from shopstack_gateway.middleware.authentication import scope_identity
from shopstack_gateway.ratelimit import Decision, Policy, RateLimiter, RateLimiterUnavailableError


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: RateLimitSettings,
        limiter: Callable[[], RateLimiter | None],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.address_policy = Policy.from_settings("address", settings.address)
        self.user_policy = Policy.from_settings("user", settings.user)
        self.token_policy = Policy.from_settings("token", settings.token)
        self.token_paths = frozenset(p.rstrip("/") for p in settings.token_paths)
        self.exempt_paths = frozenset(settings.exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The limiter exists once the lifespan has opened the resources: not for its own scope.
        limiter = self.limiter() if scope["type"] in SCOPE_TYPES else None
        if limiter is None or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        identity = scope_identity(scope)
        if scope["path"].rstrip("/") in self.token_paths:
            policy, partition = self.token_policy, client_address(scope)
        elif identity is not None:
            policy, partition = self.user_policy, identity.subject
        else:
            policy, partition = self.address_policy, client_address(scope)
        try:
            decision = await limiter.check(policy, partition)
        except RateLimiterUnavailableError:
            metrics.RATE_LIMIT_DECISIONS.labels(policy.name, "failed_closed").inc()
            await send_problem(
                scope,
                send,
                ProblemError(
                    RATE_LIMITER_UNAVAILABLE,
                    "The gateway cannot check rate limits right now.",
                    headers={"Retry-After": "1"},
                ),
            )
            return
        if decision is None:  # Redis is down and the limiter fails open
            metrics.RATE_LIMIT_DECISIONS.labels(policy.name, "failed_open").inc()
            await self.app(scope, receive, send)
        elif not decision.allowed:
            metrics.RATE_LIMIT_DECISIONS.labels(policy.name, "limited").inc()
            metrics.RATE_LIMITED.labels(policy.name).inc()
            await send_problem(scope, send, too_many_requests(decision))
        else:
            metrics.RATE_LIMIT_DECISIONS.labels(policy.name, "allowed").inc()
            await self.app(scope, receive, _with_headers(send, decision))


def client_address(scope: Scope) -> str:
    # Behind NGINX this is the real client: uvicorn's proxy-headers support takes it from
    # X-Forwarded-For when the peer is a trusted proxy (FORWARDED_ALLOW_IPS).
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many_requests(decision: Decision) -> ProblemError:
    policy = decision.policy
    return ProblemError(
        QUOTA_EXCEEDED,
        f"Rate limit {policy.name!r} exceeded: {policy.limit} requests per "
        f"{policy.window_seconds} s. Retry in {decision.retry_after} s.",
        headers={k.decode(): v.decode() for k, v in decision.headers()},
        extra={"violated-policies": [policy.name]},
    )


def _with_headers(send: Send, decision: Decision) -> Send:
    extra = decision.headers()

    async def send_with_rate_limit(message: Message) -> None:
        if message["type"] in ANSWER_STARTS:
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_rate_limit
