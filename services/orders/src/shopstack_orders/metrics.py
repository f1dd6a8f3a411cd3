"""Business metrics of the orders service (HTTP metrics come from shopstack_common)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from shopstack_common.metrics import CACHE_LOOKUPS, DEPENDENCY_FALLBACKS, CacheResult, initialise
from shopstack_orders.events.outbox import EventType
from shopstack_orders.orders.lifecycle import NEXT_STATUSES

ORDERS_PLACED = Counter(
    "shopstack_orders_placed",
    "Orders committed, by currency.",
    ["currency"],
)
ORDERS_PLACED_VALUE = Counter(
    "shopstack_orders_placed_value_minor_units",
    "Sum of the totals of committed orders in the currency's minor unit (cents for EUR), by "
    "currency.",
    ["currency"],
)
OUT_OF_STOCK_REJECTIONS = Counter(
    "shopstack_orders_out_of_stock_rejections",
    "Orders refused because a product had too little stock.",
)
ORDER_TRANSITIONS = Counter(
    "shopstack_orders_transitions",
    "Order status changes, by source and target status.",
    ["from_status", "to_status"],
)
IDEMPOTENT_REPLAYS = Counter(
    "shopstack_orders_idempotent_replays",
    "Requests answered from a stored Idempotency-Key response, by operation.",
    ["operation"],
)
IDEMPOTENCY_CONFLICTS = Counter(
    "shopstack_orders_idempotency_conflicts",
    "Idempotency-Key requests refused: the key is in flight or was used for another payload.",
    ["reason"],
)
CACHE_HITS = Counter(
    "shopstack_orders_cache_hits",
    "Product cache lookups answered from Redis, by entry kind.",
    ["kind"],
)
CACHE_MISSES = Counter(
    "shopstack_orders_cache_misses",
    "Product cache lookups that found nothing in Redis, by entry kind.",
    ["kind"],
)
CACHE_REBUILDS = Counter(
    "shopstack_orders_cache_rebuilds",
    "Cache entries rebuilt from PostgreSQL by the holder of the rebuild lock, by entry kind.",
    ["kind"],
)
CACHE_UNCACHED_READS = Counter(
    "shopstack_orders_cache_uncached_reads",
    "Reads served from PostgreSQL without the cache, by reason "
    "(redis_unavailable, lock_wait_expired).",
    ["kind", "reason"],
)
OUTBOX_LAG = Gauge(
    "shopstack_orders_outbox_lag_seconds",
    "Age of the oldest outbox event not yet published to the stream (0 when none waits), as "
    "the relay holding the lease last measured it.",
    multiprocess_mode="max",
)
OUTBOX_PENDING = Gauge(
    "shopstack_orders_outbox_pending_events",
    "Outbox events not yet published, as the relay holding the lease last counted them.",
    multiprocess_mode="max",
)
EVENTS_PUBLISHED = Counter(
    "shopstack_orders_events_published",
    "Outbox events added to the Redis stream by the relay (a redelivery counts again), by type.",
    ["type"],
)
RELAY_ERRORS = Counter(
    "shopstack_orders_relay_errors",
    "Relay attempts that failed, by the dependency that failed (redis, postgres).",
    ["dependency"],
)
RELAY_LEADER = Gauge(
    "shopstack_orders_relay_leader",
    "1 while this relay holds the publishing lease, 0 while it stands by.",
    multiprocess_mode="max",
)
EVENT_CONNECTIONS = Gauge(
    "shopstack_orders_event_connections",
    "Order event WebSockets open right now.",
    multiprocess_mode="livesum",
)
EVENT_CONNECTIONS_CLOSED = Counter(
    "shopstack_orders_event_connections_closed",
    "Order event WebSockets that ended, by reason (client, slow_consumer, idle, going_away, "
    "stream_unavailable).",
    ["reason"],
)
OUTBOX_PURGED = Counter(
    "shopstack_orders_outbox_purged_events",
    "Published outbox events deleted after their retention.",
)

# The label values known before any request: every series exists from the start (the
# currencies are the catalog's, known only once an order is placed).
CACHE_KINDS = ("product", "product_list")
initialise(RELAY_ERRORS, ("redis", "postgres"))
initialise(
    EVENT_CONNECTIONS_CLOSED,
    ("client", "slow_consumer", "idle", "going_away", "stream_unavailable"),
)
initialise(EVENTS_PUBLISHED, [event_type.value for event_type in EventType])
initialise(IDEMPOTENT_REPLAYS, ("place_order", "cancel_order", "transition_order"))
initialise(IDEMPOTENCY_CONFLICTS, ("in_flight", "payload_mismatch"))
for _current, _targets in NEXT_STATUSES.items():
    initialise(ORDER_TRANSITIONS, (_current.value,), sorted(t.value for t in _targets))
for _metric in (CACHE_HITS, CACHE_MISSES, CACHE_REBUILDS):
    initialise(_metric, CACHE_KINDS)
initialise(CACHE_UNCACHED_READS, CACHE_KINDS, ("redis_unavailable", "lock_wait_expired"))
initialise(CACHE_LOOKUPS, CACHE_KINDS, [result.value for result in CacheResult])
initialise(
    DEPENDENCY_FALLBACKS,
    ("redis",),
    (
        "products.read",
        "products.rebuild",
        "products.store",
        "products.unlock",
        "products.invalidate",
    ),
)
