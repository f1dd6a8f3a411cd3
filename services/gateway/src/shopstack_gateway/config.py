"""The gateway's one settings class.

Nested values come from JSON or from double-underscore names, and a nested value given alone
changes only itself: ``GATEWAY_UPSTREAMS__ORDERS__READ_TIMEOUT_SECONDS=3`` keeps the orders URL
and every other default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, model_validator
from pydantic_settings import SettingsConfigDict

from shopstack_common.settings import ServiceSettings, shared

# Never a symmetric algorithm (the verifier holds only public keys) and never "none".
ASYMMETRIC_ALGORITHMS = frozenset(
    {"EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


class RouteRule(BaseModel):
    """Requests whose path starts with ``prefix`` go to ``upstream`` (a key of ``upstreams``)."""

    prefix: str
    upstream: str


class PublicRoute(BaseModel):
    """A proxied path that needs no token: ``prefix`` (whole path segments) and the methods it
    is public for (empty: every method)."""

    prefix: str
    methods: frozenset[str] = frozenset()


class RetrySettings(BaseModel):
    """Retries of idempotent requests (GET, HEAD, OPTIONS, or any with an Idempotency-Key)."""

    attempts: PositiveInt = 3  # the first try included
    backoff_base_seconds: PositiveFloat = 0.05
    backoff_max_seconds: PositiveFloat = 1.0
    # The retry budget: retries may add at most this share of the requests sent ...
    budget_ratio: float = Field(default=0.2, ge=0)
    # ... plus this many per second, so a quiet upstream can still be retried at all.
    budget_min_per_second: float = Field(default=2.0, ge=0)
    # A request with an Idempotency-Key and a body up to this size is read whole before it is
    # sent, so it can be sent again; larger or chunked bodies stream, and are retried only when
    # none of the body went out (a failure to connect).
    replay_body_bytes: int = Field(default=64 * 1024, ge=0)


class BreakerSettings(BaseModel):
    failure_threshold: PositiveInt = 5  # consecutive failures that open the circuit
    open_seconds: PositiveFloat = 10.0  # then one probe request is let through


class UpstreamSettings(BaseModel):
    url: str
    connect_timeout_seconds: PositiveFloat = 1.0
    read_timeout_seconds: PositiveFloat = 10.0
    max_connections: PositiveInt = 100
    # Below the upstream servers' own keep-alive (uvicorn and gunicorn: 5 s), so the gateway
    # never reuses a connection the server is just closing.
    keepalive_seconds: PositiveFloat = 4.0
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)


class RateLimitPolicy(BaseModel):
    """``limit`` requests per ``window_seconds``, as a burst that refills evenly (GCRA)."""

    limit: PositiveInt
    window_seconds: PositiveInt


class RateLimitSettings(BaseModel):
    enabled: bool = True
    # Redis unreachable: let requests through (True) or answer 503 (False).
    fail_open: bool = True
    # Per client address, for requests without a (valid) token.
    address: RateLimitPolicy = Field(
        default_factory=lambda: RateLimitPolicy(limit=120, window_seconds=60)
    )
    # Per authenticated caller: the user, or the service client of a client-credentials token.
    user: RateLimitPolicy = Field(
        default_factory=lambda: RateLimitPolicy(limit=600, window_seconds=60)
    )
    # Per client address on the token endpoint: password guessing is what it guards against.
    token: RateLimitPolicy = Field(
        default_factory=lambda: RateLimitPolicy(limit=10, window_seconds=60)
    )
    token_paths: list[str] = Field(default_factory=lambda: ["/api/v1/auth/token"])
    # Probes and scrapes are never limited.
    exempt_paths: list[str] = Field(default_factory=lambda: ["/healthz", "/readyz", "/metrics"])


DEFAULT_ROUTES = [
    RouteRule(prefix="/api/v1/auth", upstream="users"),
    RouteRule(prefix="/api/v1/users", upstream="users"),
    RouteRule(prefix="/.well-known/jwks.json", upstream="users"),
    # The admin console: pages of users with a sign-in of their own.
    RouteRule(prefix="/admin", upstream="users"),
    RouteRule(prefix="/api/v1/products", upstream="orders"),
    RouteRule(prefix="/api/v1/orders", upstream="orders"),
]

READS = frozenset({"GET", "HEAD"})
DEFAULT_PUBLIC_ROUTES = [
    PublicRoute(prefix="/api/v1/auth/register"),
    PublicRoute(prefix="/api/v1/auth/token"),
    PublicRoute(prefix="/api/v1/auth/revoke"),
    PublicRoute(prefix="/.well-known/jwks.json", methods=READS),
    PublicRoute(prefix="/api/v1/products", methods=READS),
    # The console authenticates with its own session cookie, not a bearer token; identity
    # headers are still stripped and the address rate limit still applies.
    PublicRoute(prefix="/admin"),
]


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _default_upstreams() -> dict[str, Any]:
    return {
        "users": {"url": "http://127.0.0.1:8001"},
        "orders": {"url": "http://127.0.0.1:8002"},
    }


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    service_name: str = "gateway"
    port: int = shared("PORT", 8000, ge=1, le=65535)

    upstreams: dict[str, UpstreamSettings] = Field(
        default_factory=lambda: {k: UpstreamSettings(**v) for k, v in _default_upstreams().items()}
    )
    routes: list[RouteRule] = Field(default_factory=lambda: list(DEFAULT_ROUTES))
    public_routes: list[PublicRoute] = Field(default_factory=lambda: list(DEFAULT_PUBLIC_ROUTES))
    # Access tokens (the contract with users): who issues them, for whom, signed how.
    jwt_issuer: str = "shopstack"
    jwt_audience: str = "shopstack-api"
    jwt_algorithms: frozenset[str] = frozenset({"EdDSA"})
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # Where clients get tokens (users' OAuth2 endpoint, through the gateway): the API docs'
    # "Authorize" posts there.
    token_endpoint: str = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
    # Verified tokens are remembered (until they expire) so a client's next request skips the
    # signature check; 0 turns it off.
    verified_token_cache_size: int = Field(default=10_000, ge=0)
    # The signing keys; empty: the users upstream's JWKS. Kept for the max-age users sends
    # (clamped to these bounds), refetched at most once per ``jwks_min_refresh_seconds`` when a
    # token names a key id the gateway does not hold.
    jwks_url: str = ""
    jwks_default_ttl_seconds: PositiveFloat = 300.0
    jwks_min_ttl_seconds: PositiveFloat = 30.0
    jwks_max_ttl_seconds: PositiveFloat = 3600.0
    jwks_min_refresh_seconds: PositiveFloat = 5.0
    jwks_timeout_seconds: PositiveFloat = 2.0
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    max_body_bytes: PositiveInt = 1024 * 1024
    redis_timeout_seconds: PositiveFloat = 0.25
    # The merged OpenAPI document is rebuilt at most this often.
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    # The BFF's calls to users and orders, each.
    overview_timeout_seconds: PositiveFloat = 3.0
    # WebSockets: a ticket opens one within this long (events/tickets.py) ...
    websocket_ticket_ttl_seconds: PositiveFloat = 30.0
    # ... and the gateway pings both ends of a proxied one this often (uvicorn the client's,
    # the proxy the upstream's), closing it when no pong comes within the timeout. NGINX's
    # read timeout must be longer than both together.
    websocket_ping_interval_seconds: PositiveFloat = 20.0
    websocket_ping_timeout_seconds: PositiveFloat = 20.0
    # Messages from the upstream held for a client that reads slowly; past it the client is
    # disconnected (close 4001), never buffered without bound.
    websocket_max_queue: PositiveInt = 64
    # On SIGTERM, WebSockets get this long to close with 1001 before the server stops.
    websocket_shutdown_grace_seconds: float = Field(default=2.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _merge_nested_defaults(cls, data: Any) -> Any:
        """Partial nested values (from ``__`` variables) update the defaults, not replace them."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        upstreams = data.get("upstreams")
        if isinstance(upstreams, Mapping):
            data["upstreams"] = _deep_merge(_default_upstreams(), upstreams)
        rate_limit = data.get("rate_limit")
        if isinstance(rate_limit, Mapping):
            data["rate_limit"] = _deep_merge(RateLimitSettings().model_dump(), rate_limit)
        return data

    @model_validator(mode="after")
    def _routes_name_known_upstreams(self) -> Self:
        unknown = sorted({rule.upstream for rule in self.routes} - self.upstreams.keys())
        if unknown:
            raise ValueError(f"routes name upstreams that are not configured: {unknown}")
        if not self.jwks_url and "users" not in self.upstreams:
            raise ValueError("jwks_url must be set when there is no users upstream")
        wrong = sorted(self.jwt_algorithms - ASYMMETRIC_ALGORITHMS)
        if wrong or not self.jwt_algorithms:
            raise ValueError(
                f"jwt_algorithms must be asymmetric signature algorithms; not allowed: {wrong}"
            )
        return self

    @property
    def resolved_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        return self.upstreams["users"].url.rstrip("/") + "/.well-known/jwks.json"
