"""The settings every service shares. Each service has exactly one settings class, a subclass
of ``ServiceSettings`` (``DatabaseServiceSettings`` when it owns a schema), read from the
environment (twelve-factor).

The shared variables have the same name in every service, whatever prefix the service gives
its own (the gateway's are ``GATEWAY_*``): ``ENVIRONMENT``, ``LOG_LEVEL``, ``REDIS_URL``,
``DATABASE_URL``, and what ``serve`` reads: ``HOST``, ``PORT``, ``WEB_CONCURRENCY``,
``METRICS_PORT``, ``GRACEFUL_TIMEOUT_SECONDS``, ``FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import AliasChoices, Field, PositiveFloat, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def shared(env: str, default: Any = ..., **kwargs: Any) -> Any:
    """A field read from ``env`` exactly (no prefix), or set by its own name in code."""
    name = env.lower()
    return Field(default, validation_alias=AliasChoices(env, name), **kwargs)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str
    environment: Environment = shared("ENVIRONMENT", Environment.PRODUCTION)
    log_level: str = shared("LOG_LEVEL", "INFO")
    # No default: a service that does not know where its cache lives must not start.
    redis_url: str = shared("REDIS_URL", description="Redis URL (redis://host:port/db).")
    # After a Redis failure, Redis is left alone this long (shopstack_common.backoff) instead
    # of every request paying its timeout while it is down or frozen.
    redis_retry_after_seconds: float = shared("REDIS_RETRY_AFTER_SECONDS", 2.0, ge=0)

    # A short deadline: readiness answers fast or says the dependency is not there.
    readiness_timeout_seconds: PositiveFloat = shared("READINESS_TIMEOUT_SECONDS", 2.0)
    otel_exporter_otlp_endpoint: str | None = shared("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    otel_service_name: str | None = shared("OTEL_SERVICE_NAME", None)
    # parentbased_traceidratio: the share of new traces sampled (a caller's decision is kept).
    otel_traces_sampler_arg: float = shared("OTEL_TRACES_SAMPLER_ARG", 1.0, ge=0.0, le=1.0)

    # -- what `serve` runs: the service's own server, every option from here ---------------
    host: str = shared("HOST", "127.0.0.1")
    port: int = shared("PORT", 8000, ge=1, le=65535)
    web_concurrency: int = shared("WEB_CONCURRENCY", 1, ge=1, le=64)
    # /metrics on a port of its own (never routed by an Ingress); unset, on the main port.
    metrics_port: int | None = shared("METRICS_PORT", None, ge=1, le=65535)
    # In-flight requests get this long to finish after SIGTERM.
    graceful_timeout_seconds: PositiveFloat = shared("GRACEFUL_TIMEOUT_SECONDS", 20.0)
    # An idle keep-alive connection is closed after this long. The proxy in front must keep its
    # idle ones for less, so that it always closes first and never writes a request on a
    # connection the server is closing: NGINX here keeps them 4 s; in a cluster the ingress
    # controller's pool is the longer one (ingress-nginx: 60 s), and the chart sets more.
    keep_alive_seconds: int = shared("KEEP_ALIVE_SECONDS", 5, ge=1)
    # Peers whose X-Forwarded-For / -Proto are believed (the proxy in front): addresses or
    # CIDR ranges, comma-separated; never "*" outside development.
    forwarded_allow_ips: str = shared("FORWARDED_ALLOW_IPS", "127.0.0.1")

    @model_validator(mode="after")
    def _check_shared(self) -> Self:
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must be a redis:// URL")
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("METRICS_PORT must differ from PORT")
        if "*" in self.forwarded_allow_ips and not self.is_development:
            raise ValueError(
                "FORWARDED_ALLOW_IPS='*' would let any client forge its address; name the "
                "proxy's addresses or network instead"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment in {Environment.DEVELOPMENT, Environment.TEST}

    @property
    def tracing_service_name(self) -> str:
        return self.otel_service_name or self.service_name


class DatabaseServiceSettings(ServiceSettings):
    """A service that owns a PostgreSQL schema."""

    database_url: str = shared(
        "DATABASE_URL", description="PostgreSQL URL (postgresql://user:pass@host:port/db)."
    )

    @model_validator(mode="after")
    def _check_database_url(self) -> Self:
        if not self.database_url.startswith(("postgresql://", "postgresql+", "postgres://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return self


def sqlalchemy_url(url: str, driver: str) -> str:
    """Turn a plain ``postgresql://`` URL into one naming the service's driver
    (``psycopg`` for the sync users service, ``asyncpg`` for orders)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    if scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+"):
        return f"postgresql+{driver}://{rest}"
    raise ValueError(f"not a PostgreSQL URL: {url!r}")
