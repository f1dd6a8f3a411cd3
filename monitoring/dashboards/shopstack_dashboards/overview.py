"""Overview: are the SLOs met, how much error budget is left, and each service's golden
signals (traffic, errors, latency, saturation)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from shopstack_dashboards.panels import (
    NOT_PROBES,
    Query,
    dashboard_link,
    graph,
    new_dashboard,
    service_variable,
    share,
    single_stat,
    states,
)

UID = "shopstack-overview"
# The chosen services' traffic, probes left out.
SERVED = f'job=~"$job", {NOT_PROBES}'


def build() -> dashboard.Dashboard:
    red = dashboard_link("Service RED", "shopstack-service-red")
    return (
        new_dashboard(
            uid=UID,
            title="shopstack / Overview",
            description=(
                "The SLOs and their error budgets, and the golden signals of every service."
            ),
            tags=["overview", "slo"],
        )
        .with_variable(service_variable())
        .with_row(dashboard.Row("Service level objectives"))
        .with_panel(
            single_stat(
                "API availability, 28 days",
                description=(
                    "Share of the gateway's requests (probes excluded) not answered 5xx over "
                    "the last 28 days. Objective: 99.9 %."
                ),
                unit="percentunit",
                queries=[Query('1 - job:shopstack_http_requests_5xx:ratio_rate28d{job="gateway"}')],
                thresholds=[(None, "red"), (0.999, "green")],
                decimals=3,
            )
        )
        .with_panel(
            single_stat(
                "API availability error budget left",
                description=(
                    "Share of the 28-day error budget of the availability SLO still unspent: "
                    "1 is all of it, 0 none, below 0 overspent."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        'job:shopstack_http_requests_5xx:error_budget_remaining28d{job="gateway"}'
                    )
                ],
                thresholds=[(None, "red"), (0, "orange"), (0.25, "green")],
                decimals=1,
            )
        )
        .with_panel(
            single_stat(
                "Latency SLO, 28 days",
                description=(
                    "Per service, share of its requests answered within its latency threshold "
                    "(gateway and users 0.5 s, orders 0.25 s) over 28 days. Objective: 99 %."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        '1 - job:shopstack_http_requests_slow:ratio_rate28d{job=~"$job"}', "{{job}}"
                    )
                ],
                thresholds=[(None, "red"), (0.99, "green")],
                decimals=2,
                links=[red],
            )
        )
        .with_panel(
            single_stat(
                "Latency error budget left",
                description=(
                    "Per service, share of the 28-day error budget of its latency SLO still "
                    "unspent."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        'job:shopstack_http_requests_slow:error_budget_remaining28d{job=~"$job"}',
                        "{{job}}",
                    )
                ],
                thresholds=[(None, "red"), (0, "orange"), (0.25, "green")],
                decimals=1,
            )
        )
        .with_panel(
            graph(
                "Availability burn rate",
                description=(
                    "How fast the availability error budget is being spent, over the windows "
                    "the alerts read: 1 spends it in exactly 28 days. Pages at 14.4 (1h) and 6 "
                    "(6h), tickets at 3 (1d) and 1 (3d)."
                ),
                unit="none",
                queries=[
                    Query(
                        f'job:shopstack_http_requests_5xx:ratio_rate{window}{{job="gateway"}}'
                        " / on (job) (1 - "
                        'job:shopstack_slo_availability:objective_ratio{job="gateway"})',
                        window,
                    )
                    for window in ("1h", "6h", "1d", "3d")
                ],
            )
        )
        .with_panel(
            graph(
                "Latency burn rate, 1 hour",
                description=(
                    "Per service, how fast its latency error budget is being spent over the last "
                    "hour: 1 spends it in exactly 28 days; 14.4 pages."
                ),
                unit="none",
                queries=[
                    Query(
                        'job:shopstack_http_requests_slow:ratio_rate1h{job=~"$job"}'
                        ' / on (job) (1 - job:shopstack_slo_latency:objective_ratio{job=~"$job"})',
                        "{{job}}",
                    )
                ],
                links=[red],
            )
        )
        .with_row(dashboard.Row("Golden signals"))
        .with_panel(
            graph(
                "Traffic",
                description="Requests per second each service answered, probes excluded.",
                unit="reqps",
                queries=[
                    Query(
                        'sum by (job) (rate(shopstack_http_requests_total{job=~"$job", '
                        f"{NOT_PROBES}}}[$__rate_interval]))",
                        "{{job}}",
                    )
                ],
                links=[red],
            )
        )
        .with_panel(
            graph(
                "Errors: 5xx share",
                description="Share of each service's requests answered 5xx, probes excluded.",
                unit="percentunit",
                queries=[
                    Query(
                        share(
                            f'shopstack_http_requests_total{{{SERVED}, status="5xx"}}',
                            f"shopstack_http_requests_total{{{SERVED}}}",
                            by="job",
                        ),
                        "{{job}}",
                    )
                ],
                links=[red],
            )
        )
        .with_panel(
            graph(
                "Latency: p50 and p99",
                description=(
                    "Median and 99th percentile of the time from request start to the last "
                    "response byte, per service, probes excluded (interpolated within buckets)."
                ),
                unit="s",
                queries=[
                    Query(
                        f"histogram_quantile({quantile}, sum by (job, le) (rate("
                        'shopstack_http_request_duration_seconds_bucket{job=~"$job", '
                        f"{NOT_PROBES}}}[$__rate_interval])))",
                        f"{{{{job}}}} p{label}",
                    )
                    for quantile, label in (("0.5", "50"), ("0.99", "99"))
                ],
                links=[red],
            )
        )
        .with_panel(
            graph(
                "Saturation: requests in flight",
                description=(
                    "The most requests each service was serving at once, summed over its targets."
                ),
                unit="short",
                queries=[
                    Query(
                        "sum by (job) (max_over_time"
                        '(shopstack_http_requests_in_flight{job=~"$job"}[$__rate_interval]))',
                        "{{job}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Saturation: database connections in use",
                description=(
                    "Share of each service's database pool connections in use at the busiest "
                    "moment (users and orders; the gateway owns no database)."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        "sum by (job) (max_over_time"
                        '(shopstack_db_pool_connections_in_use{job=~"$job"}'
                        "[$__rate_interval]))"
                        " / sum by (job) (max_over_time"
                        '(shopstack_db_pool_connections_limit{job=~"$job"}'
                        "[$__rate_interval]))",
                        "{{job}}",
                    )
                ],
                links=[dashboard_link("Data stores", "shopstack-datastores")],
            )
        )
        .with_panel(
            states(
                "Targets",
                description="Whether Prometheus could scrape each target of the chosen services.",
                queries=[
                    Query(
                        'min_over_time(up{job=~"$job"}[$__rate_interval])', "{{job}} {{instance}}"
                    )
                ],
                names={0: ("down", "red"), 1: ("up", "green")},
            )
        )
    )
