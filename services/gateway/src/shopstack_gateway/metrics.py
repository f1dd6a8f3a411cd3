"""The gateway's own metrics, next to the HTTP ones every service exports (shopstack_common)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shopstack_common.metrics import DEPENDENCY_FALLBACKS, LATENCY_BUCKETS, initialise

UPSTREAM_ATTEMPTS = Counter(
    "shopstack_gateway_upstream_attempts",
    "Requests the gateway sent to an upstream (retries included), by upstream and outcome "
    "(ok, error_status, timeout, unreachable).",
    ["upstream", "outcome"],
)
UPSTREAM_RETRIES = Counter(
    "shopstack_gateway_upstream_retries",
    "Retries of idempotent requests, by upstream.",
    ["upstream"],
)
RETRIES_DENIED = Counter(
    "shopstack_gateway_upstream_retries_denied",
    "Retries the retry budget refused, by upstream.",
    ["upstream"],
)
CIRCUIT_OPENED = Counter(
    "shopstack_gateway_circuit_opened",
    "Times an upstream's circuit breaker opened.",
    ["upstream"],
)
CIRCUIT_REJECTED = Counter(
    "shopstack_gateway_circuit_rejected",
    "Requests answered 503 because the upstream's circuit was open.",
    ["upstream"],
)
CIRCUIT_STATE = Gauge(
    "shopstack_gateway_circuit_state",
    "Circuit breaker state per upstream (0 closed, 1 open, 2 half-open); the worst worker wins.",
    ["upstream"],
    multiprocess_mode="livemax",
)
AUTH_FAILURES = Counter(
    "shopstack_gateway_auth_failures",
    "Requests refused for their credentials, by reason.",
    ["reason"],
)
JWKS_FETCHES = Counter(
    "shopstack_gateway_jwks_fetches",
    "Fetches of the token signing keys, by outcome (ok, error).",
    ["outcome"],
)
RATE_LIMITED = Counter(
    "shopstack_gateway_rate_limited",
    "Requests answered 429, by rate-limit policy.",
    ["policy"],
)
RATE_LIMIT_DECISIONS = Counter(
    "shopstack_gateway_rate_limit_decisions",
    "Rate-limit checks by policy and outcome (allowed, limited, failed_open or failed_closed "
    "when Redis did not answer).",
    ["policy", "outcome"],
)
CIRCUIT_TRANSITIONS = Counter(
    "shopstack_gateway_circuit_transitions",
    "Circuit breaker state changes, by upstream and the state entered.",
    ["upstream", "to_state"],
)
UPSTREAM_REQUEST_DURATION = Histogram(
    "shopstack_gateway_upstream_request_duration_seconds",
    "Time from sending one attempt to an upstream to its response headers, by upstream and "
    "outcome.",
    ["upstream", "outcome"],
    buckets=LATENCY_BUCKETS,
)
JWKS_REFRESHES = Counter(
    "shopstack_gateway_jwks_refreshes",
    "Refreshes of the token signing keys, by what triggered them (startup, expired, unknown_kid).",
    ["trigger"],
)
SYNTHETIC_REQUESTS = Counter(
    "shopstack_gateway_synthetic_requests",
    "Requests marked synthetic with X-Synthetic-Source (load generators, fault runs, probes), "
    "by source and status class.",
    ["source", "status_class"],
)

# The label values known before any request: every series exists from the start.
RATE_LIMIT_POLICIES = ("token", "user", "address")
AUTH_FAILURE_REASONS = (
    "missing", "malformed", "algorithm", "type", "kid", "expired", "not_yet_valid", "issuer",
    "audience", "signature", "claims", "keys_unavailable", "invalid_ticket",
)  # fmt: skip
UPSTREAM_OUTCOMES = ("ok", "error_status", "timeout", "unreachable")
CIRCUIT_STATES = ("closed", "open", "half_open")
initialise(RATE_LIMITED, RATE_LIMIT_POLICIES)
initialise(
    RATE_LIMIT_DECISIONS,
    RATE_LIMIT_POLICIES,
    ("allowed", "limited", "failed_open", "failed_closed"),
)
initialise(AUTH_FAILURES, AUTH_FAILURE_REASONS)
initialise(JWKS_FETCHES, ("ok", "error"))
initialise(JWKS_REFRESHES, ("startup", "expired", "unknown_kid"))
initialise(DEPENDENCY_FALLBACKS, ("redis",), ("ratelimit",))
# Anything not in this list is counted as "other": a label never takes free text.
SYNTHETIC_SOURCES = ("load", "faults", "probe")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
initialise(SYNTHETIC_REQUESTS, (*SYNTHETIC_SOURCES, "other"), STATUS_CLASSES)


def initialise_upstream(name: str) -> None:
    """Every series of one upstream, at zero (called once per configured upstream)."""
    for metric in (UPSTREAM_ATTEMPTS, UPSTREAM_REQUEST_DURATION):
        initialise(metric, (name,), UPSTREAM_OUTCOMES)
    for metric in (UPSTREAM_RETRIES, RETRIES_DENIED, CIRCUIT_OPENED, CIRCUIT_REJECTED):
        initialise(metric, (name,))
    initialise(CIRCUIT_TRANSITIONS, (name,), CIRCUIT_STATES)
