"""Baseline: placing an order as raw SQL on asyncpg, as fast as it honestly can be.

The same transaction as the orders service's ``POST /api/v1/orders``, on the same driver
family (asyncpg) and the same tables (a database migrated by the service's own Alembic
history), served by one uvicorn worker:

1. read the ordered products (price, currency, stock, active);
2. refuse unknown, inactive, mixed-currency or already short lines (422 / 409);
3. one statement writes the order, its lines, its creation transition and its
   ``order.placed`` outbox event (data-modifying CTEs);
4. per product, in product-id order, one statement takes the stock with the conditional
   ``UPDATE ... WHERE stock >= n`` and writes its ``stock.changed`` outbox event;
5. commit, and answer 201 with the order as JSON.

What it leaves out is what a real service adds around that transaction: schema validation
with field-named problems, the framework's routing and dependencies, metrics, tracing, the
access log, the product cache's invalidation. That difference is what the benchmark measures.

    uvicorn --app-dir benchmarks raw_sql_order:app   # DATABASE_URL=postgresql://...
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

USER_HEADER = b"x-shopstack-user-id"

PRODUCTS = (
    "SELECT id, sku, price, currency, stock, active FROM orders.products WHERE id = ANY($1::uuid[])"
)
WRITE_ORDER = """
WITH o AS (
    INSERT INTO orders.orders (id, user_id, status, currency, total, note)
    VALUES ($1, $2, 'pending', $3, $4, $5)
    RETURNING created_at, updated_at
), i AS (
    INSERT INTO orders.order_items
        (order_id, line_no, product_id, sku, quantity, unit_price, line_total)
    SELECT $1, l.*
    FROM unnest($6::smallint[], $7::uuid[], $8::text[], $9::int[], $10::int[], $11::bigint[])
        AS l
), t AS (
    INSERT INTO orders.order_transitions (order_id, from_status, to_status, actor)
    VALUES ($1, NULL, 'pending', $12)
    RETURNING at
), e AS (
    INSERT INTO orders.outbox_events (id, type, subject, subject_id, version, user_id, payload)
    VALUES ($13, 'order.placed', 'order', $1, 1, $2, $14::jsonb)
)
SELECT o.created_at, o.updated_at, t.at FROM o, t
"""
TAKE_STOCK = """
WITH u AS (
    UPDATE orders.products
    SET stock = stock - $2, stock_version = stock_version + 1, updated_at = now()
    WHERE id = $1 AND stock >= $2
    RETURNING stock, stock_version
), e AS (
    INSERT INTO orders.outbox_events (id, type, subject, subject_id, version, payload)
    SELECT $3, 'stock.changed', 'product', $1, u.stock_version,
        jsonb_build_object('product_id', $1::text, 'stock', u.stock, 'change', -$2::int,
                           'reason', 'reserved')
    FROM u
)
SELECT stock FROM u
"""


class RefusedError(Exception):
    def __init__(self, status: int, problem: str) -> None:
        self.status = status
        self.problem = problem


def _iso(value: Any) -> str:
    return str(value.isoformat())


async def place(pool: asyncpg.Pool, user_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    lines = [(uuid.UUID(line["product_id"]), int(line["quantity"])) for line in body["items"]]
    note = body.get("note")
    order_id = uuid.uuid4()
    async with pool.acquire() as connection, connection.transaction():
        found = {row["id"]: row for row in await connection.fetch(PRODUCTS, [p for p, _ in lines])}
        if any(p not in found or not found[p]["active"] for p, _ in lines):
            raise RefusedError(422, "product-not-orderable")
        if len({found[p]["currency"] for p, _ in lines}) > 1:
            raise RefusedError(422, "mixed-currencies")
        if any(found[p]["stock"] < n for p, n in lines):
            raise RefusedError(409, "out-of-stock")
        items = [
            {
                "product_id": str(p),
                "sku": found[p]["sku"],
                "quantity": n,
                "unit_price": found[p]["price"],
                "line_total": found[p]["price"] * n,
            }
            for p, n in lines
        ]
        total = sum(item["line_total"] for item in items)
        currency = found[lines[0][0]]["currency"]
        event = {
            "order_id": str(order_id),
            "user_id": str(user_id),
            "status": "pending",
            "previous_status": None,
            "actor": str(user_id),
            "total": total,
            "currency": currency,
        }
        written = await connection.fetchrow(
            WRITE_ORDER,
            order_id,
            user_id,
            currency,
            total,
            note,
            list(range(1, len(lines) + 1)),
            [p for p, _ in lines],
            [item["sku"] for item in items],
            [n for _, n in lines],
            [item["unit_price"] for item in items],
            [item["line_total"] for item in items],
            str(user_id),
            uuid.uuid4(),
            json.dumps(event),
        )
        # In product-id order, last before the commit: the same lock discipline as the service.
        for product_id, quantity in sorted(lines):
            if await connection.fetchval(TAKE_STOCK, product_id, quantity, uuid.uuid4()) is None:
                raise RefusedError(409, "out-of-stock")  # leaving the block rolls back
    return {
        "id": str(order_id),
        "user_id": str(user_id),
        "status": "pending",
        "items": items,
        "total": total,
        "currency": currency,
        "note": note,
        "transitions": [
            {"from": None, "to": "pending", "actor": str(user_id), "at": _iso(written["at"])}
        ],
        "created_at": _iso(written["created_at"]),
        "updated_at": _iso(written["updated_at"]),
    }


class App:
    """A bare ASGI app: POST /api/v1/orders and GET /healthz, nothing else."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["path"] in {"/healthz", "/readyz"}:
            await _answer(send, 200, {"status": "ok"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        assert self.pool is not None
        try:
            order = await place(
                self.pool, uuid.UUID(headers[USER_HEADER].decode()), json.loads(b"".join(chunks))
            )
        except RefusedError as refused:
            await _answer(
                send, refused.status, {"type": refused.problem}, "application/problem+json"
            )
            return
        await _answer(send, 201, order)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    os.environ["DATABASE_URL"],
                    min_size=int(os.environ.get("DB_POOL_SIZE", "10")),
                    max_size=int(os.environ.get("DB_POOL_SIZE", "10")),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(
    send: Send, status: int, body: dict[str, Any], content_type: str = "application/json"
) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


app = App()
