"""HTTP metrics every service exports, and the /metrics payload.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn or uvicorn with several workers), every
worker writes its samples there and the payload aggregates them, so no worker goes uncounted.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from enum import StrEnum

from opentelemetry import trace
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

UNMATCHED_ROUTE = "<unmatched>"

# Buckets sized for an API whose answers are expected in milliseconds, with a tail to 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "shopstack_http_requests",
    "HTTP requests served, by route template, method and status class.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "shopstack_http_request_duration_seconds",
    "Time from request start to the last response byte, by route, method and status class.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "shopstack_http_requests_in_flight",
    "Requests being served right now.",
    multiprocess_mode="livesum",
)
DEPENDENCY_FALLBACKS = Counter(
    "shopstack_dependency_fallbacks",
    "Times a request went on without an optional dependency (for example Redis) and degraded.",
    ["dependency", "operation"],
)

# -- the database pool (users and orders; shopstack_common.database sets them) -------------
# Gauges are per process and summed over a server's workers: each worker has its own pool.
DB_POOL_IN_USE = Gauge(
    "shopstack_db_pool_connections_in_use",
    "Database connections checked out of the pool right now.",
    multiprocess_mode="livesum",
)
DB_POOL_IDLE = Gauge(
    "shopstack_db_pool_connections_idle",
    "Database connections open in the pool and free right now.",
    multiprocess_mode="livesum",
)
DB_POOL_OVERFLOW = Gauge(
    "shopstack_db_pool_connections_overflow",
    "Database connections open beyond DB_POOL_SIZE right now (at most DB_MAX_OVERFLOW).",
    multiprocess_mode="livesum",
)
DB_POOL_LIMIT = Gauge(
    "shopstack_db_pool_connections_limit",
    "The most database connections the pool may hold (DB_POOL_SIZE plus DB_MAX_OVERFLOW).",
    multiprocess_mode="livesum",
)
# From half a millisecond (a free connection) to the pool timeout (5 s by default).
DB_POOL_WAIT_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
DB_POOL_WAIT = Histogram(
    "shopstack_db_pool_wait_seconds",
    "Time spent getting a database connection from the pool: waiting for a free one, or "
    "opening a new one.",
    buckets=DB_POOL_WAIT_BUCKETS,
)
DB_POOL_TIMEOUTS = Counter(
    "shopstack_db_pool_timeouts",
    "Requests that found no free database connection within DB_POOL_TIMEOUT_SECONDS "
    "(answered 503).",
)

# -- caches ----------------------------------------------------------------------------------
CACHE_LOOKUPS = Counter(
    "shopstack_cache_lookups",
    "Cache lookups by cache and result (hit, miss, or fallback when Redis did not answer and "
    "PostgreSQL served the read).",
    ["cache", "result"],
)


class CacheResult(StrEnum):
    HIT = "hit"
    MISS = "miss"
    # Redis did not answer: the read went to PostgreSQL.
    FALLBACK = "fallback"


def observe_cache_lookup(cache: str, result: CacheResult) -> None:
    """One lookup in a service's cache (``user``; ``product``, ``product_list``)."""
    CACHE_LOOKUPS.labels(cache, result.value).inc()


def initialise(metric: Counter | Gauge | Histogram, *values: Iterable[str]) -> None:
    """Export a labelled metric at zero for every combination of its known label values
    (``values``: one iterable per label, in the metric's label order), before anything
    happened. A series that appears at its first event has no earlier sample to differ from,
    so ``rate()`` and ``increase()`` miss that event; and a dashboard shows 0, not nothing."""
    for labels in itertools.product(*values):
        metric.labels(*labels)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def trace_exemplar(span: trace.Span | None = None) -> dict[str, str] | None:
    """The trace id of ``span`` (the current one by default) when it is sampled, as an
    exemplar for a latency observation; None in multiprocess mode, where prometheus-client
    keeps no exemplars."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    context = (span or trace.get_current_span()).get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


def observe_request(*, route: str, method: str, status: int, duration: float) -> None:
    labels = (route, method.upper(), status_class(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_REQUEST_DURATION.labels(*labels).observe(duration, exemplar=trace_exemplar())


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def negotiated_payload(accept: str | None) -> tuple[bytes, str]:
    """The exposition in the format ``accept`` asks for, and its content type: OpenMetrics
    (the only one that carries exemplars) when the scraper asks, as Prometheus does, else
    the classic text format."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_registry()), content_type
