"""The orders service's one settings class."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopstack_common.settings import DatabaseServiceSettings, shared


class OrdersSettings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = "orders"
    port: int = shared("PORT", 8002, ge=1, le=65535)
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: float = 3.0
    db_statement_timeout_ms: int = 5000

    redis_timeout_seconds: float = 0.25
    product_cache_ttl_seconds: int = Field(default=300, ge=1)
    # Stampede protection: one request per key rebuilds the entry under a Redis lock that
    # expires by itself (a crashed holder cannot block the key); the others poll for its result.
    product_cache_lock_ttl_ms: int = Field(default=2000, ge=10)
    product_cache_wait_ms: int = Field(default=1000, ge=0)
    product_cache_poll_ms: int = Field(default=10, ge=1)

    # Idempotency-Key records live at least this long (the IETF draft asks for 24 h or more).
    idempotency_retention_hours: int = Field(default=24, ge=24)
    # How long a request waits for a concurrent request holding the same key before it is
    # answered 409: long enough to absorb a fast duplicate, short enough not to pile up.
    idempotency_lock_timeout_ms: int = Field(default=100, ge=1)
    # Expired keys are deleted by `shopstack-orders purge-idempotency-keys` and by a task in
    # every process at this interval (0 turns the task off).
    idempotency_purge_interval_seconds: float = Field(default=3600.0, ge=0)
    idempotency_purge_batch_size: int = Field(default=1000, ge=1)

    # -- events: the outbox and its relay (`shopstack-orders relay`) -------------------------
    events_stream: str = "orders:events"
    # XADD ... MAXLEN ~ n: the stream keeps about this many events, the window a consumer
    # can resume from.
    events_stream_maxlen: int = Field(default=100_000, ge=1000)
    relay_batch_size: int = Field(default=200, ge=1, le=10_000)
    # How often an idle relay looks for new rows; bounds the delivery latency.
    relay_poll_interval_seconds: float = Field(default=0.05, gt=0)
    # After a failure (Redis or PostgreSQL down, the lease taken by another relay), the
    # relay waits this long before trying again.
    relay_retry_seconds: float = Field(default=1.0, gt=0)
    relay_redis_timeout_seconds: float = Field(default=5.0, gt=0)
    # Published rows are deleted after this long (the stream holds the events by then).
    outbox_retention_hours: float = Field(default=24.0, ge=0)
    outbox_purge_interval_seconds: float = Field(default=300.0, gt=0)
    outbox_purge_batch_size: int = Field(default=1000, ge=1)

    # -- live events: the WebSocket /api/v1/orders/events (events/live.py) ------------------
    # Messages held for a client that reads slowly; when full, it is closed with 4001.
    events_ws_queue_size: int = Field(default=256, ge=1, le=100_000)
    # How long one XREAD waits for new entries before it asks again.
    events_ws_block_ms: int = Field(default=5000, ge=1, le=60_000)
    # A connection that delivered nothing for this long is closed with 4008.
    events_ws_idle_timeout_seconds: float = Field(default=3600.0, gt=0)
    events_ws_max_connections_per_user: int = Field(default=5, ge=1)
    # Each open WebSocket holds one Redis connection (its blocking XREAD); past this many in
    # one process, new ones are refused 503 events-unavailable.
    events_ws_max_connections_per_process: int = Field(default=10_000, ge=1)
    # A connection's claim on its slot lapses this long after its process stops renewing it.
    events_ws_connection_lease_seconds: float = Field(default=60.0, ge=1)
    # On SIGTERM, connections get this long to send their 1001 before the server stops.
    events_ws_shutdown_grace_seconds: float = Field(default=2.0, ge=0)

    # Repeated warnings about the same failing dependency are logged once per burst.
    log_burst_quiet_seconds: float = Field(default=30.0, ge=0)
