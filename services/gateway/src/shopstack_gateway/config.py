"""The gateway's one settings class."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstack_common.settings import Environment


class RouteRule(BaseModel):
    """Requests whose path starts with ``prefix`` go to ``upstream`` (a key of ``upstreams``)."""

    prefix: str
    upstream: str


class UpstreamSettings(BaseModel):
    url: str
    connect_timeout_seconds: float = 1.0
    read_timeout_seconds: float = 10.0
    max_connections: int = 100


DEFAULT_ROUTES = [
    RouteRule(prefix="/api/v1/auth", upstream="users"),
    RouteRule(prefix="/api/v1/users", upstream="users"),
    RouteRule(prefix="/.well-known/jwks.json", upstream="users"),
    RouteRule(prefix="/api/v1/products", upstream="orders"),
    RouteRule(prefix="/api/v1/orders", upstream="orders"),
]


class GatewaySettings(BaseSettings):
    # Nested values come from JSON or from double-underscore names:
    # GATEWAY_UPSTREAMS__USERS__URL=http://users:8000
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    service_name: str = "gateway"
    environment: Environment = Field(default=Environment.PRODUCTION, validation_alias="ENVIRONMENT")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    redis_url: str = Field(validation_alias="REDIS_URL")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )

    upstreams: dict[str, UpstreamSettings] = Field(
        default_factory=lambda: {
            "users": UpstreamSettings(url="http://127.0.0.1:8001"),
            "orders": UpstreamSettings(url="http://127.0.0.1:8002"),
        }
    )
    routes: list[RouteRule] = Field(default_factory=lambda: list(DEFAULT_ROUTES))
    max_body_bytes: int = 1024 * 1024
    redis_timeout_seconds: float = 0.25
    readiness_timeout_seconds: float = 2.0
