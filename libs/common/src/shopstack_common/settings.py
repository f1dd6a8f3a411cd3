"""The settings every service shares. Each service has exactly one settings class, a subclass
of this one, read from the environment (twelve-factor)."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Environment = Environment.PRODUCTION
    log_level: str = "INFO"
    # No defaults: a service that does not know where its data lives must not start.
    database_url: str = Field(description="PostgreSQL URL (postgresql://user:pass@host:port/db).")
    redis_url: str = Field(description="Redis URL (redis://host:port/db).")

    # A short deadline: readiness answers fast or says the dependency is not there.
    readiness_timeout_seconds: float = 2.0
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = None

    @model_validator(mode="after")
    def _check_urls(self) -> Self:
        if not self.database_url.startswith(("postgresql://", "postgresql+", "postgres://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must be a redis:// URL")
        return self

    @property
    def is_development(self) -> bool:
        return self.environment in {Environment.DEVELOPMENT, Environment.TEST}


def sqlalchemy_url(url: str, driver: str) -> str:
    """Turn a plain ``postgresql://`` URL into one naming the service's driver
    (``psycopg`` for the sync users service, ``asyncpg`` for orders)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    if scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+"):
        return f"postgresql+{driver}://{rest}"
    raise ValueError(f"not a PostgreSQL URL: {url!r}")
