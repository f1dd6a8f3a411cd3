"""The users service's one settings class."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shopstack_common.settings import ServiceSettings


class UsersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = "users"
    db_schema: str = "users"
    db_pool_size: int = 5
    db_pool_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: int = 3
    db_statement_timeout_ms: int = 5000
    redis_timeout_seconds: float = 0.25
    max_content_length: int = 64 * 1024
