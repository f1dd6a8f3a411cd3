"""Per-service RED: rate, errors and duration of the chosen service and routes, and what
saturates it."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from shopstack_dashboards.panels import (
    Query,
    dashboard_link,
    graph,
    new_dashboard,
    query_variable,
    service_variable,
    share,
)

UID = "shopstack-service-red"
CHOSEN = 'job=~"$job", route=~"$route"'


def build() -> dashboard.Dashboard:
    requests = f"shopstack_http_requests_total{{{CHOSEN}}}"
    buckets = f"shopstack_http_request_duration_seconds_bucket{{{CHOSEN}}}"
    return (
        new_dashboard(
            uid=UID,
            title="shopstack / Service RED",
            description=(
                "Rate, errors and duration by route for the chosen services, and what "
                "saturates them."
            ),
            tags=["red", "service"],
        )
        .with_variable(service_variable())
        .with_variable(
            query_variable(
                "route",
                label="Route",
                description=(
                    "Route templates of the chosen services (the gateway's proxied prefixes "
                    "end in /*)."
                ),
                query='label_values(shopstack_http_requests_total{job=~"$job"}, route)',
            )
        )
        .with_row(dashboard.Row("Rate"))
        .with_panel(
            graph(
                "Requests by route",
                description="Requests per second answered on each chosen route.",
                unit="reqps",
                queries=[
                    Query(
                        f"sum by (job, route) (rate({requests}[$__rate_interval]))",
                        "{{job}} {{route}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Requests by status class",
                description="Requests per second by status class (2xx, 3xx, 4xx, 5xx), stacked.",
                unit="reqps",
                stacked=True,
                queries=[
                    Query(f"sum by (status) (rate({requests}[$__rate_interval]))", "{{status}}")
                ],
            )
        )
        .with_row(dashboard.Row("Errors"))
        .with_panel(
            graph(
                "5xx share by route",
                description="Share of each route's requests answered 5xx: the server failed.",
                unit="percentunit",
                queries=[
                    Query(
                        share(
                            f'shopstack_http_requests_total{{{CHOSEN}, status="5xx"}}',
                            requests,
                            by="job, route",
                        ),
                        "{{job}} {{route}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "4xx by route",
                description=(
                    "Requests per second answered 4xx on each route: refused input, missing "
                    "credentials, rate limits. A rise may be a client's bug or an attack."
                ),
                unit="reqps",
                queries=[
                    Query(
                        f"sum by (job, route) (rate(shopstack_http_requests_total{{{CHOSEN}, "
                        'status="4xx"}[$__rate_interval]))',
                        "{{job}} {{route}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Duration"))
        .with_panel(
            graph(
                "Duration: p50, p90, p99",
                description=(
                    "Percentiles of the time to the last response byte, over the chosen routes."
                ),
                unit="s",
                queries=[
                    Query(
                        f"histogram_quantile({q}, sum by (le) (rate({buckets}[$__rate_interval])))",
                        f"p{label}",
                    )
                    for q, label in (("0.5", "50"), ("0.9", "90"), ("0.99", "99"))
                ],
            )
        )
        .with_panel(
            graph(
                "p99 by route",
                description="99th percentile of the time to the last response byte, per route.",
                unit="s",
                queries=[
                    Query(
                        "histogram_quantile(0.99, sum by (job, route, le) "
                        f"(rate({buckets}[$__rate_interval])))",
                        "{{job}} {{route}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Within the latency SLO threshold",
                description=(
                    "Share of the chosen routes' requests answered within the service's latency "
                    "SLO threshold (gateway and users 0.5 s, orders 0.25 s). The SLO asks 99 %."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        f"sum by (job) (rate({buckets}[$__rate_interval])"
                        " * on (job, le) group_left () "
                        'job_le:shopstack_slo_latency:threshold{job=~"$job"})'
                        " / sum by (job) (rate"
                        f"(shopstack_http_request_duration_seconds_count{{{CHOSEN}}}"
                        "[$__rate_interval]))",
                        "{{job}}",
                    )
                ],
                width=24,
            )
        )
        .with_row(dashboard.Row("Saturation"))
        .with_panel(
            graph(
                "Requests in flight",
                description="The most requests each target was serving at once.",
                unit="short",
                queries=[
                    Query(
                        "max by (job, instance) "
                        '(max_over_time(shopstack_http_requests_in_flight{job=~"$job"}'
                        "[$__rate_interval]))",
                        "{{job}} {{instance}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Database pool connections",
                description=(
                    "Per target: connections in use, idle, and open beyond DB_POOL_SIZE, at the "
                    "busiest moment; the limit is DB_POOL_SIZE plus DB_MAX_OVERFLOW."
                ),
                unit="short",
                queries=[
                    Query(
                        "max by (job, instance) "
                        f'(max_over_time(shopstack_db_pool_connections_{state}{{job=~"$job"}}[$__rate_interval]))',
                        f"{{{{job}}}} {{{{instance}}}} {state.replace('_', ' ')}",
                    )
                    for state in ("in_use", "idle", "overflow", "limit")
                ],
                links=[dashboard_link("Data stores", "shopstack-datastores")],
            )
        )
        .with_panel(
            graph(
                "Database pool wait, p99",
                description="99th percentile of the time spent getting a connection from the pool.",
                unit="s",
                queries=[
                    Query(
                        "histogram_quantile(0.99, sum by (job, le) (rate("
                        'shopstack_db_pool_wait_seconds_bucket{job=~"$job"}[$__rate_interval])))',
                        "{{job}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Database pool timeouts and Redis fallbacks",
                description=(
                    "Per second: requests that found no pool connection in time (answered 503), "
                    "and operations that went on without Redis, by operation."
                ),
                unit="ops",
                queries=[
                    Query(
                        'sum by (job) (rate(shopstack_db_pool_timeouts_total{job=~"$job"}'
                        "[$__rate_interval]))",
                        "{{job}} pool timeouts",
                    ),
                    Query(
                        "sum by (job, operation) "
                        '(rate(shopstack_dependency_fallbacks_total{job=~"$job"}'
                        "[$__rate_interval]))",
                        "{{job}} without Redis: {{operation}}",
                    ),
                ],
            )
        )
    )
