"""HTTP metrics every service exports, and the /metrics payload.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn or uvicorn with several workers), every
worker writes its samples there and the payload aggregates them, so no worker goes uncounted.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
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


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def observe_request(*, route: str, method: str, status: int, duration: float) -> None:
    labels = (route, method.upper(), status_class(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_REQUEST_DURATION.labels(*labels).observe(duration)


def metrics_payload() -> bytes:
    """The text exposition of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
