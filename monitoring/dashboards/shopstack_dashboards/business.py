"""Business: orders and their value, stock refusals, sign-ups and sign-ins, per minute."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from shopstack_dashboards.panels import Query, graph, new_dashboard

UID = "shopstack-business"
ORDERS = 'job="orders"'
USERS = 'job="users"'


def _per_minute(metric: str, selector: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{{{selector}}}[$__rate_interval])) * 60"


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            uid=UID,
            title="shopstack / Business",
            description=(
                "Orders per minute and their value by currency, stock refusals, sign-ups and "
                "sign-ins."
            ),
            tags=["business"],
        )
        .with_row(dashboard.Row("Orders"))
        .with_panel(
            graph(
                "Orders per minute",
                description="Orders committed per minute, by the currency they are priced in.",
                unit="opm",
                queries=[
                    Query(
                        _per_minute("shopstack_orders_placed_total", ORDERS, "currency"),
                        "{{currency}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Order value per minute",
                description=(
                    "Sum of the totals of orders committed per minute, by currency, in the "
                    "currency's minor unit as the API prices it (cents for EUR): not comparable "
                    "across currencies."
                ),
                unit="short",
                queries=[
                    Query(
                        _per_minute(
                            "shopstack_orders_placed_value_minor_units_total", ORDERS, "currency"
                        ),
                        "{{currency}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Out-of-stock refusals and idempotent replays",
                description=(
                    "Per minute: orders refused because a product had too little stock (409), "
                    "and requests answered from a stored Idempotency-Key response, by operation."
                ),
                unit="opm",
                queries=[
                    Query(
                        _per_minute("shopstack_orders_out_of_stock_rejections_total", ORDERS),
                        "out of stock",
                    ),
                    Query(
                        _per_minute(
                            "shopstack_orders_idempotent_replays_total", ORDERS, "operation"
                        ),
                        "replayed {{operation}}",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Order status changes",
                description=(
                    "Orders per minute entering each status (paid, shipped, delivered, cancelled)."
                ),
                unit="opm",
                stacked=True,
                queries=[
                    Query(
                        _per_minute("shopstack_orders_transitions_total", ORDERS, "to_status"),
                        "{{to_status}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Accounts"))
        .with_panel(
            graph(
                "Sign-ups per minute",
                description="Accounts created by registration per minute.",
                unit="opm",
                queries=[
                    Query(_per_minute("shopstack_users_registrations_total", USERS), "sign-ups")
                ],
            )
        )
        .with_panel(
            graph(
                "Sign-ins per minute",
                description=(
                    "Password sign-ins per minute by outcome: ok, bad_password (unknown email or "
                    "wrong password), throttled (too many failures for the account and address)."
                ),
                unit="opm",
                stacked=True,
                queries=[
                    Query(
                        _per_minute("shopstack_users_logins_total", USERS, "outcome"), "{{outcome}}"
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Tokens issued and refused",
                description=(
                    "Access tokens issued per minute by grant type, and token requests refused "
                    "by OAuth2 error."
                ),
                unit="opm",
                queries=[
                    Query(
                        _per_minute("shopstack_users_tokens_issued_total", USERS, "grant_type"),
                        "issued {{grant_type}}",
                    ),
                    Query(
                        _per_minute("shopstack_users_token_errors_total", USERS, "error"),
                        "refused {{error}}",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Refresh-token reuse",
                description=(
                    "Rotated refresh tokens presented again, per minute: each means two parties "
                    "held one token, and revoked its whole family."
                ),
                unit="opm",
                queries=[
                    Query(
                        _per_minute("shopstack_users_refresh_token_reuse_total", USERS),
                        "reuse detected",
                    )
                ],
            )
        )
    )
