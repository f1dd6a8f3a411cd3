"""The gateway: its rate limits, circuit breakers, upstreams, retries and token checks."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from shopstack_dashboards.panels import (
    Query,
    dashboard_link,
    graph,
    new_dashboard,
    query_variable,
    states,
)

UID = "shopstack-gateway"
UPSTREAMS = 'job="gateway", upstream=~"$upstream"'


def _rate(metric: str, by: str, selector: str = UPSTREAMS) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval]))"


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            uid=UID,
            title="shopstack / Gateway",
            description=(
                "Rate limits, circuit breakers, upstream latency, retries and token checks of "
                "the gateway."
            ),
            tags=["gateway"],
        )
        .with_variable(
            query_variable(
                "upstream",
                label="Upstream",
                description="The services the gateway proxies to.",
                query=(
                    'label_values(shopstack_gateway_upstream_attempts_total{job="gateway"}, '
                    "upstream)"
                ),
            )
        )
        .with_row(dashboard.Row("Rate limits"))
        .with_panel(
            graph(
                "Rate-limit decisions",
                description=(
                    "Rate-limit checks per second by policy (token, user, address) and outcome: "
                    "allowed, limited (429), or failed open / closed when Redis did not answer."
                ),
                unit="reqps",
                stacked=True,
                queries=[
                    Query(
                        _rate(
                            "shopstack_gateway_rate_limit_decisions_total",
                            "policy, outcome",
                            'job="gateway"',
                        ),
                        "{{policy}} {{outcome}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Limited (429) and unchecked requests",
                description=(
                    "Requests per second answered 429 by policy, and requests the limiter could "
                    "not check because Redis did not answer (let through while failing open)."
                ),
                unit="reqps",
                queries=[
                    Query(
                        _rate("shopstack_gateway_rate_limited_total", "policy", 'job="gateway"'),
                        "429 {{policy}}",
                    ),
                    Query(
                        _rate(
                            "shopstack_dependency_fallbacks_total",
                            "operation",
                            'job="gateway", dependency="redis", operation="ratelimit"',
                        ),
                        "not checked: Redis unavailable",
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Circuit breakers"))
        .with_panel(
            states(
                "Breaker state",
                description=(
                    "Each upstream's circuit breaker, the worst of the gateway's processes: "
                    "closed (requests flow), open (answered 503 by the gateway), half-open "
                    "(one probe goes through)."
                ),
                queries=[
                    Query(
                        "max by (upstream) (max_over_time"
                        f"(shopstack_gateway_circuit_state{{{UPSTREAMS}}}[$__rate_interval]))",
                        "{{upstream}}",
                    )
                ],
                names={0: ("closed", "green"), 1: ("open", "red"), 2: ("half-open", "orange")},
            )
        )
        .with_panel(
            graph(
                "Breaker transitions and refusals",
                description=(
                    "Per second: state changes of each breaker by the state entered, and requests "
                    "the gateway answered 503 itself because the circuit was open."
                ),
                unit="ops",
                queries=[
                    Query(
                        _rate("shopstack_gateway_circuit_transitions_total", "upstream, to_state"),
                        "{{upstream}} to {{to_state}}",
                    ),
                    Query(
                        _rate("shopstack_gateway_circuit_rejected_total", "upstream"),
                        "{{upstream}} refused",
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Upstreams"))
        .with_panel(
            graph(
                "Attempts by outcome",
                description=(
                    "Requests per second the gateway sent to each upstream, retries included: ok, "
                    "error_status (502/503/504 from it), timeout, unreachable."
                ),
                unit="reqps",
                stacked=True,
                queries=[
                    Query(
                        _rate("shopstack_gateway_upstream_attempts_total", "upstream, outcome"),
                        "{{upstream}} {{outcome}}",
                    )
                ],
                links=[
                    dashboard_link("Service RED", "shopstack-service-red", keep_variables=False)
                ],
            )
        )
        .with_panel(
            graph(
                "Upstream latency: p50 and p99",
                description="Time from sending one attempt to an upstream to its response headers.",
                unit="s",
                queries=[
                    Query(
                        f"histogram_quantile({q}, sum by (upstream, le) (rate("
                        f"shopstack_gateway_upstream_request_duration_seconds_bucket{{{UPSTREAMS}}}[$__rate_interval])))",
                        f"{{{{upstream}}}} p{label}",
                    )
                    for q, label in (("0.5", "50"), ("0.99", "99"))
                ],
            )
        )
        .with_row(dashboard.Row("Retries"))
        .with_panel(
            graph(
                "Retries and budget refusals",
                description=(
                    "Retries per second of idempotent requests by upstream, and retries the retry "
                    "budget (20 % of requests plus 2 a second) refused."
                ),
                unit="ops",
                queries=[
                    Query(
                        _rate("shopstack_gateway_upstream_retries_total", "upstream"),
                        "{{upstream}} retried",
                    ),
                    Query(
                        _rate("shopstack_gateway_upstream_retries_denied_total", "upstream"),
                        "{{upstream}} refused by the budget",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Retries per attempt",
                description="Share of the attempts sent to each upstream that were retries.",
                unit="percentunit",
                queries=[
                    Query(
                        _rate("shopstack_gateway_upstream_retries_total", "upstream")
                        + " / "
                        + _rate("shopstack_gateway_upstream_attempts_total", "upstream"),
                        "{{upstream}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Tokens"))
        .with_panel(
            graph(
                "Refused credentials",
                description=(
                    "Requests per second refused for their token, by reason (missing, expired, "
                    "signature, ...)."
                ),
                unit="reqps",
                stacked=True,
                queries=[
                    Query(
                        _rate("shopstack_gateway_auth_failures_total", "reason", 'job="gateway"'),
                        "{{reason}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Signing keys: fetches and refreshes",
                description=(
                    "Fetches of the JWKS from users per second by outcome, and refreshes by "
                    "trigger (startup, expired, unknown_kid)."
                ),
                unit="ops",
                queries=[
                    Query(
                        _rate("shopstack_gateway_jwks_fetches_total", "outcome", 'job="gateway"'),
                        "fetch {{outcome}}",
                    ),
                    Query(
                        _rate("shopstack_gateway_jwks_refreshes_total", "trigger", 'job="gateway"'),
                        "refresh: {{trigger}}",
                    ),
                ],
            )
        )
    )
