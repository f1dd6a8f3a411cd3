"""The orders service's one settings class."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shopstack_common.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = "orders"
    db_schema: str = "orders"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: float = 3.0
    db_statement_timeout_ms: int = 5000
    redis_timeout_seconds: float = 0.25
    product_cache_ttl_seconds: int = 300
