"""Stock: the one place that changes how many units of a product there are.

Each change is a conditional UPDATE, which PostgreSQL evaluates on the newest row version
once it holds the row lock, so no interleaving of concurrent transactions can take the stock
below zero or above ``MAX_STOCK`` (the ``stock >= 0`` CHECK is the last guard):

* ``reserve`` takes an order's units: ``stock = stock - n WHERE stock >= n``, all or nothing;
* ``release`` gives a cancelled order's units back: ``stock = stock + n``;
* ``restock`` adds a delivery: ``stock = stock + n WHERE stock <= MAX_STOCK - n``.

Two rules for callers keep a hot product's row locked briefly and concurrent transactions
free of deadlocks: call these as the last statements before the commit (the row lock is then
held for one round trip and the commit, not for the whole request), and lock an order row, if
at all, before any product row. ``reserve`` and ``release`` update their products in product
id order, so transactions that touch the same products queue instead of waiting in a cycle.

Each change also writes its ``stock.changed`` event to the outbox, in the same transaction and
while the row lock is held (``events.outbox``).

``refuse_short`` is the early look, at pricing time: an order short already is refused before
anything is written. It reads without a lock, so ``reserve`` checks again under it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Integer, Table, Uuid, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from shopstack_common.built_once import built_once
from shopstack_common.problems import OUT_OF_STOCK, STOCK_LIMIT, ProblemError
from shopstack_orders.catalog.models import Product
from shopstack_orders.catalog.schemas import MAX_STOCK
from shopstack_orders.events.outbox import StockReason, add_stock_event, stock_event_from
from shopstack_orders.metrics import OUT_OF_STOCK_REJECTIONS

# Every stock change counts one version; its event carries the new one.
_NEXT_VERSION = Product.stock_version + 1
_PRODUCTS = cast(Table, Product.__table__)


def _take_statement() -> Select[tuple[int, int]]:
    """``stock = stock - n WHERE stock >= n`` and its event, in one statement: the UPDATE and
    the outbox INSERT are CTEs of one SELECT, so a hot product's row lock is held for one
    round trip and the commit. Nothing comes back when the stock is short (no event then)."""
    columns = _PRODUCTS.c
    quantity = bindparam("p_quantity", type_=Integer())
    taken = (
        update(_PRODUCTS)
        .where(columns.id == bindparam("p_product_id", type_=Uuid()), columns.stock >= quantity)
        .values(stock=columns.stock - quantity, stock_version=columns.stock_version + 1)
        .returning(columns.id, columns.stock, columns.stock_version)
        .cte("taken")
    )
    event = stock_event_from(taken, change=-quantity, reason=StockReason.RESERVED).cte("event")
    return select(taken.c.stock, taken.c.stock_version).add_cte(event)


# Built once: this runs for every line of every order.
_take = built_once(_take_statement)


@dataclass(frozen=True)
class StockLine:
    """Units of one product. Lines keep the order of the request's ``items``, and problems
    name a line by its position there (``items[2].quantity``)."""

    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class Shortage:
    index: int
    product_id: uuid.UUID
    sku: str
    requested: int
    available: int


def refuse_short(lines: Sequence[StockLine], stocks: Mapping[uuid.UUID, tuple[str, int]]) -> None:
    """409 ``out-of-stock`` if the stock read at pricing time, ``(sku, stock)`` of each
    product, cannot serve every line."""
    short = []
    for index, line in enumerate(lines):
        sku, available = stocks[line.product_id]
        if available < line.quantity:
            short.append(Shortage(index, line.product_id, sku, line.quantity, available))
    if short:
        raise _out_of_stock(short)


async def reserve(*, session: AsyncSession, lines: Sequence[StockLine]) -> None:
    """Take every line's units, or none: 409 ``out-of-stock`` naming each line that cannot be
    served now (the caller's transaction then rolls back what was taken)."""
    wanted = {line.product_id: line.quantity for line in lines}
    taken: set[uuid.UUID] = set()
    failed: uuid.UUID | None = None
    for product_id in sorted(wanted):
        left = (
            await session.execute(
                _take(), {"p_product_id": product_id, "p_quantity": wanted[product_id]}
            )
        ).one_or_none()
        if left is None:
            failed = product_id
            break
        taken.add(product_id)
    if failed is None:
        return
    # Others took the units since the lines were priced. Report what each line could have
    # had; this transaction's own decrements, about to be rolled back, count as available.
    rows = await session.execute(
        select(Product.id, Product.sku, Product.stock).where(Product.id.in_(wanted))
    )
    available = {
        product_id: (sku, stock + (wanted[product_id] if product_id in taken else 0))
        for product_id, sku, stock in rows
    }
    short = []
    for index, line in enumerate(lines):
        sku, stock = available[line.product_id]
        if line.product_id == failed or stock < line.quantity:
            short.append(Shortage(index, line.product_id, sku, line.quantity, stock))
    raise _out_of_stock(short)


async def release(*, session: AsyncSession, lines: Sequence[StockLine]) -> None:
    """Give every line's units back."""
    for line in sorted(lines, key=lambda line: line.product_id):
        row = (
            await session.execute(
                update(Product)
                .where(Product.id == line.product_id)
                .values(stock=Product.stock + line.quantity, stock_version=_NEXT_VERSION)
                .returning(Product.stock, Product.stock_version)
                .execution_options(synchronize_session=False)
            )
        ).one()
        add_stock_event(
            session=session,
            product_id=line.product_id,
            version=row.stock_version,
            stock=row.stock,
            change=line.quantity,
            reason=StockReason.RELEASED,
        )


async def restock(*, session: AsyncSession, product_id: uuid.UUID, quantity: int) -> Product | None:
    """Add ``quantity`` units; ``None`` if there is no such product. 422 ``stock-limit`` if the
    stock would pass ``MAX_STOCK``."""
    product: Product | None = await session.scalar(
        update(Product)
        .where(Product.id == product_id, Product.stock <= MAX_STOCK - quantity)
        .values(stock=Product.stock + quantity, stock_version=_NEXT_VERSION)
        .returning(Product)
    )
    if product is not None:
        add_stock_event(
            session=session,
            product_id=product_id,
            version=product.stock_version,
            stock=product.stock,
            change=quantity,
            reason=StockReason.RESTOCKED,
        )
        return product
    current = await session.scalar(select(Product.stock).where(Product.id == product_id))
    if current is None:
        return None
    raise ProblemError(
        STOCK_LIMIT,
        f"Stock is {current}; it cannot exceed {MAX_STOCK}.",
        errors=[
            {"field": "quantity", "location": "body", "message": f"at most {MAX_STOCK - current}"}
        ],
    )


def _out_of_stock(short: Sequence[Shortage]) -> ProblemError:
    OUT_OF_STOCK_REJECTIONS.inc()
    return ProblemError(
        OUT_OF_STOCK,
        "Not enough stock for "
        + ", ".join(f"{line.sku} ({line.available} available)" for line in short)
        + ".",
        errors=[
            {
                "field": f"items[{line.index}].quantity",
                "location": "body",
                "message": f"{line.available} available",
            }
            for line in short
        ],
        extra={
            "unavailable": [
                {
                    "product_id": str(line.product_id),
                    "sku": line.sku,
                    "requested": line.requested,
                    "available": line.available,
                }
                for line in short
            ]
        },
    )
