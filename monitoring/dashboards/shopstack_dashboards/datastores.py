"""PostgreSQL and Redis, from their exporters and from the services' own connection pools and
caches."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from shopstack_dashboards.panels import (
    Query,
    graph,
    new_dashboard,
    service_variable,
    single_stat,
    up_or_down,
)

UID = "shopstack-datastores"
# The databases the platform uses: not the templates, not the row of shared objects.
DATABASES = 'job="postgres", datname!~"template0|template1|"'
POSTGRES = 'job="postgres"'
REDIS = 'job="redis"'
SERVICES = 'job=~"$job"'
ORDERS = 'job="orders"'
HITS = 'job=~"$job", result="hit"'
WITHOUT_REDIS = 'job=~"$job", dependency="redis"'


def _over(metric: str, selector: str) -> str:
    return f"max_over_time({metric}{{{selector}}}[$__rate_interval])"


def _rate(metric: str, selector: str) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            uid=UID,
            title="shopstack / Data stores",
            description=(
                "PostgreSQL and Redis from their exporters, and the services' connection pools "
                "and caches."
            ),
            tags=["postgresql", "redis"],
        )
        .with_variable(service_variable())
        .with_row(dashboard.Row("PostgreSQL"))
        .with_panel(
            up_or_down(
                "PostgreSQL",
                description=(
                    "Whether the exporter could connect to PostgreSQL, the worst value in each "
                    "interval."
                ),
                queries=[Query('min(min_over_time(pg_up{job="postgres"}[$__rate_interval]))')],
            )
        )
        .with_panel(
            single_stat(
                "Connections used",
                description="Server connections in any state, as a share of max_connections.",
                unit="percentunit",
                queries=[
                    Query(
                        f"sum({_over('pg_stat_activity_count', POSTGRES)})"
                        f" / max({_over('pg_settings_max_connections', POSTGRES)})"
                    )
                ],
                thresholds=[(None, "green"), (0.75, "orange"), (0.9, "red")],
                decimals=1,
            )
        )
        .with_panel(
            graph(
                "Connections by state",
                description=(
                    "Server connections by state (active, idle, idle in transaction, ...), at "
                    "the busiest moment."
                ),
                unit="short",
                stacked=True,
                width=12,
                queries=[
                    Query(
                        f"sum by (state) ({_over('pg_stat_activity_count', POSTGRES)})", "{{state}}"
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Transactions",
                description=(
                    "Transactions per second committed and rolled back, over the platform's "
                    "databases."
                ),
                unit="ops",
                queries=[
                    Query(f"sum({_rate('pg_stat_database_xact_commit', DATABASES)})", "committed"),
                    Query(
                        f"sum({_rate('pg_stat_database_xact_rollback', DATABASES)})", "rolled back"
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Buffer cache hit ratio and deadlocks",
                description=(
                    "Share of block reads found in PostgreSQL's buffer cache (left), and deadlocks "
                    "detected per second (a deadlock aborts one of the transactions)."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        f"sum({_rate('pg_stat_database_blks_hit', DATABASES)})"
                        f" / (sum({_rate('pg_stat_database_blks_hit', DATABASES)})"
                        f" + sum({_rate('pg_stat_database_blks_read', DATABASES)}))",
                        "buffer cache hits",
                    ),
                    Query(
                        f"sum({_rate('pg_stat_database_deadlocks', DATABASES)})",
                        "deadlocks per second",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Database size",
                description="Disk space used by each of the platform's databases.",
                unit="bytes",
                queries=[
                    Query(
                        f"max by (datname) ({_over('pg_database_size_bytes', DATABASES)})",
                        "{{datname}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Redis"))
        .with_panel(
            up_or_down(
                "Redis",
                description=(
                    "Whether the exporter could reach Redis, the worst value in each interval."
                ),
                queries=[Query('min(min_over_time(redis_up{job="redis"}[$__rate_interval]))')],
            )
        )
        .with_panel(
            single_stat(
                "Keyspace hit ratio",
                description=(
                    "Share of key lookups that found their key, over every client of Redis."
                ),
                unit="percentunit",
                queries=[
                    Query(
                        f"sum({_rate('redis_keyspace_hits_total', REDIS)})"
                        f" / (sum({_rate('redis_keyspace_hits_total', REDIS)})"
                        f" + sum({_rate('redis_keyspace_misses_total', REDIS)}))"
                    )
                ],
                thresholds=[(None, "orange"), (0.5, "green")],
                decimals=1,
            )
        )
        .with_panel(
            graph(
                "Commands, clients and evictions",
                description=(
                    "Commands processed per second, keys evicted per second (memory full), and "
                    "connected clients."
                ),
                unit="short",
                queries=[
                    Query(
                        f"sum({_rate('redis_commands_processed_total', REDIS)})",
                        "commands per second",
                    ),
                    Query(
                        f"sum({_rate('redis_evicted_keys_total', REDIS)})", "evictions per second"
                    ),
                    Query(f"sum({_over('redis_connected_clients', REDIS)})", "clients"),
                ],
            )
        )
        .with_panel(
            graph(
                "Memory",
                description="Memory Redis uses, against its maxmemory (0: no limit set).",
                unit="bytes",
                queries=[
                    Query(f"max({_over('redis_memory_used_bytes', REDIS)})", "used"),
                    Query(f"max({_over('redis_memory_max_bytes', REDIS)})", "maxmemory"),
                ],
            )
        )
        .with_panel(
            graph(
                "Keys by database",
                description="Keys held in each Redis database (every key has a TTL).",
                unit="short",
                queries=[Query(f"max by (db) ({_over('redis_db_keys', REDIS)})", "{{db}}")],
            )
        )
        .with_row(dashboard.Row("Service connection pools"))
        .with_panel(
            graph(
                "Pool connections by service",
                description=(
                    "Database connections of each service's pools, summed over its targets: in "
                    "use, idle and open beyond DB_POOL_SIZE, against the limit."
                ),
                unit="short",
                queries=[
                    Query(
                        "sum by (job) ("
                        + _over(f"shopstack_db_pool_connections_{state}", SERVICES)
                        + ")",
                        f"{{{{job}}}} {state.replace('_', ' ')}",
                    )
                    for state in ("in_use", "idle", "overflow", "limit")
                ],
            )
        )
        .with_panel(
            graph(
                "Pool wait p99 and timeouts",
                description=(
                    "99th percentile of the time spent getting a pool connection (left), and "
                    "requests per second that found none in time."
                ),
                unit="s",
                queries=[
                    Query(
                        "histogram_quantile(0.99, sum by (job, le) ("
                        f"{_rate('shopstack_db_pool_wait_seconds_bucket', SERVICES)}))",
                        "{{job}} wait p99",
                    ),
                    Query(
                        f"sum by (job) ({_rate('shopstack_db_pool_timeouts_total', SERVICES)})",
                        "{{job}} timeouts per second",
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Service caches"))
        .with_panel(
            graph(
                "Cache hit ratio",
                description="Share of each cache's lookups answered from Redis.",
                unit="percentunit",
                queries=[
                    Query(
                        f"sum by (job, cache) ({_rate('shopstack_cache_lookups_total', HITS)})"
                        " / sum by (job, cache) "
                        f"({_rate('shopstack_cache_lookups_total', SERVICES)})",
                        "{{job}} {{cache}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Cache lookups by result",
                description=(
                    "Lookups per second by cache and result: hit, miss, or fallback (Redis did "
                    "not answer)."
                ),
                unit="ops",
                stacked=True,
                queries=[
                    Query(
                        "sum by (job, cache, result) "
                        f"({_rate('shopstack_cache_lookups_total', SERVICES)})",
                        "{{job}} {{cache}} {{result}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Going on without Redis",
                description=(
                    "Operations per second that went on without Redis, by service and operation: "
                    "degraded, not failed."
                ),
                unit="ops",
                queries=[
                    Query(
                        "sum by (job, operation) ("
                        f"{_rate('shopstack_dependency_fallbacks_total', WITHOUT_REDIS)})",
                        "{{job}} {{operation}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Product cache rebuilds and uncached reads (orders)",
                description=(
                    "Per second: product cache entries rebuilt by the holder of the rebuild lock, "
                    "and reads served from PostgreSQL without the cache, by reason."
                ),
                unit="ops",
                queries=[
                    Query(
                        f"sum by (kind) ({_rate('shopstack_orders_cache_rebuilds_total', ORDERS)})",
                        "rebuilt {{kind}}",
                    ),
                    Query(
                        "sum by (kind, reason) "
                        f"({_rate('shopstack_orders_cache_uncached_reads_total', ORDERS)})",
                        "uncached {{kind}}: {{reason}}",
                    ),
                ],
            )
        )
    )
