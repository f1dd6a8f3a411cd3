"""Benchmark: reading page N of a list at 1,000,000 orders and 100,000 products vs 10,000.

Keyset pagination should make a page cost the same however large the table and however deep
the page. This measures it on the real service (one uvicorn worker) over HTTP, against two
databases in one embedded PostgreSQL, loaded side by side:

* small: 10,000 orders and 10,000 products;
* large: 1,000,000 orders and 100,000 products (``--orders``, ``--products``).

One customer owns every tenth order (100,000 at the large size); the others belong to 1,000
other customers. The customer's orders have one line and their creation transition each, as
placed orders do; the others have none, which keeps the load short: they are never read, and
lines and transitions are only ever reached by order id.
The rows are bulk-loaded with ``INSERT ... SELECT generate_series`` (foreign-key triggers off
for the load with ``session_replication_role = replica``: the rows are consistent by
construction), then ``ANALYZE``: well under a minute for the large size on two cores.

For a customer's orders (newest first) and the product list (by name), early (the pages from
the 2nd on) and deep (the pages that end at 90 % of the list), it reads ``--samples``
different pages (different cursors: the product list's page cache never answers twice), one request
at a time, and reports each p50, large against small; the target is <= 1.2x. Cursors are made
with the service's own ``encode_cursor`` from the row at the position (found with an OFFSET in
the benchmark, never by the service).

Before timing it proves the indexes: it EXPLAINs the service's own page queries
(``list_statement``, ``page_statement``, compiled with their parameters) and the loads of the
page's lines and transitions on the large database, prints each plan's node types, and fails
if a Seq Scan over a loaded table or a Sort of more than a page's rows appears.

    make bench-orders-pages
    make bench-orders-pages ARGS="--orders 200000 --products 20000 --samples 30"
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import psycopg
from place_orders import create_database, orders_service
from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql

from benchmarks.report import write_result
from shopstack_common.identity import Identity
from shopstack_devstack.backends import start_servers
from shopstack_orders.catalog.schemas import ProductListParams
from shopstack_orders.catalog.service import page_statement
from shopstack_orders.orders.models import OrderItem, OrderTransition
from shopstack_orders.orders.schemas import OrderListParams
from shopstack_orders.orders.service import list_statement
from shopstack_orders.pagination import encode_cursor

CUSTOMER = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
BIG_TABLES = {"orders", "order_items", "order_transitions", "products", "outbox_events"}
PAGE = 20

# One statement each (psycopg binds parameters on the server: one statement at a time).
# Ids and names are seeded with the size, so the two databases share no cursor (and no entry
# of the product cache, whose Redis both services use).
LOAD = [
    "SET session_replication_role = replica",
    """INSERT INTO orders.products (id, sku, name, description, price, currency, stock, active)
    SELECT md5(%(seed)s || 'product' || i)::uuid, 'SKU-' || i,
           'Product ' || md5(%(seed)s || i), '', 100 + i %% 10000, 'EUR', 1000, true
    FROM generate_series(1, %(products)s) AS i""",
    """INSERT INTO orders.orders (id, user_id, status, currency, total, created_at, updated_at)
    SELECT md5(%(seed)s || 'order' || i)::uuid,
           CASE WHEN i %% 10 = 0 THEN %(customer)s::uuid ELSE md5('user' || i %% 1000)::uuid END,
           'pending', 'EUR', 2599,
           timestamptz '2026-01-01' + i * interval '1 second',
           timestamptz '2026-01-01' + i * interval '1 second'
    FROM generate_series(1, %(orders)s) AS i""",
    """INSERT INTO orders.order_items
        (order_id, line_no, product_id, sku, quantity, unit_price, line_total)
    SELECT id, 1, md5(%(seed)s || 'product1')::uuid, 'SKU-1', 1, 2599, 2599 FROM orders.orders
    WHERE user_id = %(customer)s::uuid""",
    """INSERT INTO orders.order_transitions (order_id, from_status, to_status, actor, at)
    SELECT id, NULL, 'pending', user_id::text, created_at FROM orders.orders
    WHERE user_id = %(customer)s::uuid""",
    "SET session_replication_role = DEFAULT",
]


@dataclass(frozen=True)
class Size:
    name: str
    orders: int
    products: int


def load(database_url: str, size: Size) -> float:
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as connection:
        values = {
            "seed": size.name,
            "products": size.products,
            "orders": size.orders,
            "customer": CUSTOMER,
        }
        for statement in LOAD:
            connection.execute(statement, values if "%(" in statement else None)
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


# -- the positions and their cursors -----------------------------------------------------


def order_cursors(database_url: str, offset: int, count: int) -> list[str | None]:
    """Cursors of ``count`` pages of the customer's orders, starting after row ``offset``."""
    scope = ("orders", str(CUSTOMER), None, None, None)
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT created_at, id FROM orders.orders WHERE user_id = %s "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT %s",
            (CUSTOMER, offset, count * PAGE),
        ).fetchall()
    return [
        encode_cursor(query=scope, key=(created_at.isoformat(), order_id))
        for created_at, order_id in rows[::PAGE][:count]
    ]


def product_cursors(database_url: str, offset: int, count: int) -> list[str | None]:
    scope = ("products", "name", None, None)
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT name, id FROM orders.products ORDER BY name, id OFFSET %s LIMIT %s",
            (offset, count * PAGE),
        ).fetchall()
    return [encode_cursor(query=scope, key=row) for row in rows[::PAGE][:count]]


# -- the plans ------------------------------------------------------------------------------


def compiled(statement: Select[Any]) -> tuple[str, dict[str, Any]]:
    query = statement.compile(
        dialect=postgresql.psycopg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(query), dict(query.params)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def check_plan(connection: psycopg.Connection[Any], label: str, statement: Select[Any]) -> bool:
    """Print the plan's node types; False if it scans or sorts a big table."""
    sql, params = compiled(statement)
    row = connection.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
    assert row is not None
    nodes = list(plan_nodes(row[0][0]["Plan"]))
    shown = [
        node["Node Type"]
        + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
        + (f" using {node['Index Name']}" if "Index Name" in node else "")
        for node in nodes
    ]
    bad = [
        node
        for node in nodes
        if (node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES)
        or (node["Node Type"] in {"Sort", "Incremental Sort"} and node["Plan Rows"] > PAGE * 5)
    ]
    verdict = "FAILED: a Seq Scan or Sort over a big table" if bad else "ok"
    print(f"  {label:<34} {' > '.join(shown)}   {verdict}")
    return not bad


def check_plans(database_url: str, size: Size) -> bool:
    customer = Identity(user_id=CUSTOMER, roles=frozenset({"customer"}))
    mine = size.orders // 10
    deep_orders = order_cursors(database_url, int(mine * 0.9), 1)[0]
    statements: list[tuple[str, Select[Any]]] = [
        ("orders, first page", list_statement(customer, OrderListParams())[0]),
        (
            "orders, deep page",
            list_statement(customer, OrderListParams(cursor=deep_orders))[0],
        ),
        ("products, first page", page_statement(ProductListParams(), None)),
    ]
    with psycopg.connect(database_url) as connection:
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT id FROM orders.orders WHERE user_id = %s LIMIT %s", (CUSTOMER, PAGE)
            ).fetchall()
        ]
        deep_key = connection.execute(
            "SELECT name, id FROM orders.products ORDER BY name, id OFFSET %s LIMIT 1",
            (int(size.products * 0.9),),
        ).fetchone()
        assert deep_key is not None
        statements.append(("products, deep page", page_statement(ProductListParams(), deep_key)))
        # What the page's selectinload asks next: its orders' lines and transitions.
        statements.append(
            (
                "a page's lines",
                select(OrderItem)
                .where(OrderItem.order_id.in_(ids))
                .order_by(OrderItem.order_id, OrderItem.line_no),
            )
        )
        statements.append(
            (
                "a page's transitions",
                select(OrderTransition)
                .where(OrderTransition.order_id.in_(ids))
                .order_by(OrderTransition.order_id, OrderTransition.id),
            )
        )
        return all(check_plan(connection, label, statement) for label, statement in statements)


# -- the timing -----------------------------------------------------------------------------


async def p50(base: str, path: str, cursors: list[str | None], headers: dict[str, str]) -> float:
    """The median time of reading each cursor's page, one request at a time (ms)."""
    times = []
    async with aiohttp.ClientSession(base) as http:
        for cursor in [cursors[0], *cursors]:  # the first read warms the connection
            params = {"limit": str(PAGE)} | ({"cursor": cursor} if cursor else {})
            started = time.perf_counter()
            async with http.get(path, params=params, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body[:500]
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:]) * 1000


async def measure(
    bases: dict[str, str], urls: dict[str, str], sizes: dict[str, Size], samples: int
) -> dict[tuple[str, str, str], float]:
    customer = Identity(user_id=CUSTOMER, roles=frozenset({"customer"})).to_headers()
    figures: dict[tuple[str, str, str], float] = {}
    # Small and large alternate for each figure, so drift hits both alike. Early: the pages
    # from the 2nd on; deep: the pages that end at 90 % of the list.
    window = samples * PAGE
    for what, path in (("orders", "/api/v1/orders"), ("products", "/api/v1/products")):
        for where in ("early", "deep"):
            for name, size in sizes.items():
                url = urls[name]
                rows = size.orders // 10 if what == "orders" else size.products
                offset = PAGE if where == "early" else max(PAGE, int(rows * 0.9) - window)
                cursors = (order_cursors if what == "orders" else product_cursors)(
                    url, offset, samples
                )
                if len(cursors) < samples:
                    raise SystemExit(f"the {name} list is too short for {samples} pages")
                figures[(what, where, name)] = await p50(bases[name], path, cursors, customer)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="orders and products, small")
    parser.add_argument("--samples", type=int, default=20, help="pages read per figure")
    args = parser.parse_args()
    sizes = {
        "small": Size("small", args.small, args.small),
        "large": Size("large", args.orders, args.products),
    }
    print("starting PostgreSQL and Redis (embedded) ...", flush=True)
    with start_servers("embedded") as servers, ExitStack() as stack:
        urls = {name: create_database(servers) for name in sizes}
        for name, size in sizes.items():
            seconds = load(urls[name], size)
            print(
                f"loaded {name}: {size.orders:,} orders, "
                f"{size.products:,} products in {seconds:.1f} s",
                flush=True,
            )
        print("plans on the large database:")
        plans_ok = check_plans(urls["large"], sizes["large"])
        bases = {
            name: stack.enter_context(orders_service(urls[name], servers.redis_url, 1, 10))[0]
            for name in sizes
        }
        figures = asyncio.run(measure(bases, urls, sizes, args.samples))
    print()
    print(
        f"page p50, {PAGE} per page, {args.samples} pages per figure, one request at a time, "
        "one uvicorn worker each"
    )
    rows = []
    for what, where in (
        ("orders", "early"),
        ("orders", "deep"),
        ("products", "early"),
        ("products", "deep"),
    ):
        small, large = figures[(what, where, "small")], figures[(what, where, "large")]
        ratio = large / small
        label = "a customer's orders" if what == "orders" else "the product list"
        page = "page 2" if where == "early" else "page at 90 %"
        print(
            f"  {label:<20} {page:<13} large {large:6.2f} ms   small {small:6.2f} ms   "
            f"{ratio:.2f}x   target <= 1.2x: {'met' if ratio <= 1.2 else 'MISSED'}"
        )
        rows.append(
            {
                "figure": f"{label}, {page}, p50 at {sizes['large'].orders:,} orders / "
                f"{sizes['large'].products:,} products",
                "value": round(large, 3),
                "unit": "ms",
                "baseline_name": f"the same at {args.small:,}",
                "baseline": round(small, 3),
                "ratio": round(ratio, 3),
                "target": "<= 1.2x",
                "met": ratio <= 1.2,
            }
        )
    write_result("orders-pages", rows)
    print()
    if not plans_ok:
        raise SystemExit("FAILED: a page query scans or sorts a big table (plans above)")


if __name__ == "__main__":
    main()
