"""Placing orders against the catalog's stock, and moving them through their life cycle.

An order is priced from the catalog and written, then its stock is reserved, all in one
transaction; cancelling returns the stock in the transaction that records the cancellation.
How stock changes, and why that never oversells or deadlocks, is ``catalog.stock``'s to say:
this module calls it as the last work before each commit (the ``last`` step of
``idempotency.run``) and locks an order row, when it does, before any product row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    SmallInteger,
    Table,
    Text,
    Uuid,
    bindparam,
    false,
    func,
    insert,
    select,
    true,
    tuple_,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shopstack_common.built_once import built_once
from shopstack_common.identity import Identity
from shopstack_common.problems import (
    FORBIDDEN,
    MIXED_CURRENCIES,
    NOT_FOUND,
    PRODUCT_NOT_ORDERABLE,
    FieldError,
    ProblemError,
)
from shopstack_orders.cache import ProductCache
from shopstack_orders.catalog import stock
from shopstack_orders.catalog.models import Product
from shopstack_orders.catalog.stock import StockLine
from shopstack_orders.events.outbox import OUTBOX, order_event_values
from shopstack_orders.idempotency import service as idempotency
from shopstack_orders.idempotency.schemas import Outcome
from shopstack_orders.metrics import ORDERS_PLACED, ORDERS_PLACED_VALUE
from shopstack_orders.orders.lifecycle import (
    OrderStatus,
)
from shopstack_orders.orders.models import Order, OrderItem, OrderTransition
from shopstack_orders.orders.schemas import (
    OrderCreate,
    OrderListParams,
    OrderPublic,
    OrderSummary,
)
from shopstack_orders.pagination import Page, decode_cursor, encode_cursor

_ORDERS = cast(Table, Order.__table__)
_ITEMS = cast(Table, OrderItem.__table__)
_TRANSITIONS = cast(Table, OrderTransition.__table__)
_PRODUCTS = cast(Table, Product.__table__)

_ORDER_KEY: TypeAdapter[tuple[datetime, uuid.UUID]] = TypeAdapter(tuple[datetime, uuid.UUID])


def order_not_found(order_id: uuid.UUID) -> ProblemError:
    # Also the answer for someone else's order: whether it exists is not theirs to know.
    return ProblemError(NOT_FOUND, f"No order {order_id}.")


def with_lines(statement: Select[Order]) -> Select[Order]:
    return statement.options(selectinload(Order.items), selectinload(Order.transitions))


def may_see(viewer: Identity, order: Order) -> bool:
    return viewer.is_admin or (viewer.user_id is not None and order.user_id == viewer.user_id)


def _stock_lines(order_in: OrderCreate) -> list[StockLine]:
    return [StockLine(line.product_id, line.quantity) for line in order_in.items]


# -- placing --------------------------------------------------------------------------------


async def place_order(
    *,
    session: AsyncSession,
    cache: ProductCache,
    policy: idempotency.IdempotencyPolicy,
    buyer: Identity,
    order_in: OrderCreate,
    idempotency_key: str | None,
) -> Outcome[OrderPublic]:
    request = idempotency.idempotent_request(
        caller=buyer.subject,
        key=idempotency_key,
        operation="place_order",
        payload=order_in.model_dump(mode="json"),
    )
    lines = _stock_lines(order_in)

    async def create() -> OrderPublic:
        return await _create(session=session, buyer=buyer, order_in=order_in, lines=lines)

    async def reserve() -> None:
        await stock.reserve(session=session, lines=lines)

    outcome = await idempotency.run(
        session=session,
        request=request,
        policy=policy,
        status_code=201,
        action=create,
        last=reserve,
    )
    if outcome.result is not None:
        ORDERS_PLACED.labels(outcome.result.currency).inc()
        ORDERS_PLACED_VALUE.labels(outcome.result.currency).inc(outcome.result.total)
        await cache.invalidate(line.product_id for line in lines)
    return outcome


@dataclass(frozen=True)
class _Priced:
    """What pricing reads of a product."""

    sku: str
    price: int
    currency: str
    stock: int
    active: bool


# No lock: the order is placed at the prices of this moment; the stock is checked again,
# under the row lock, by the reservation.
_PRICE = select(
    _PRODUCTS.c.id,
    _PRODUCTS.c.sku,
    _PRODUCTS.c.price,
    _PRODUCTS.c.currency,
    _PRODUCTS.c.stock,
    _PRODUCTS.c.active,
).where(_PRODUCTS.c.id.in_(bindparam("p_ids", expanding=True)))


def _write_statement() -> Select[tuple[datetime, datetime, datetime]]:
    """The order, its lines, its creation record and its ``order.placed`` event in one
    statement (data-modifying CTEs of one SELECT): one round trip instead of a flush of four
    INSERTs. The lines come in as arrays, unnested in line order. The foreign keys are
    checked at the end of the statement, when the order row is in."""
    order_id = bindparam("p_order_id", type_=Uuid())
    placed = (
        insert(_ORDERS)
        .values(
            id=order_id,
            user_id=bindparam("p_user_id", type_=Uuid()),
            status=OrderStatus.PENDING.value,
            currency=bindparam("p_currency", type_=Text()),
            total=bindparam("p_total", type_=BigInteger()),
            note=bindparam("p_note", type_=Text()),
        )
        .returning(_ORDERS.c.created_at, _ORDERS.c.updated_at)
        .cte("placed")
    )
    lines = (
        func.unnest(
            sql_cast(bindparam("p_line_nos"), ARRAY(SmallInteger())),
            sql_cast(bindparam("p_product_ids"), ARRAY(Uuid())),
            sql_cast(bindparam("p_skus"), ARRAY(Text())),
            sql_cast(bindparam("p_quantities"), ARRAY(Integer())),
            sql_cast(bindparam("p_unit_prices"), ARRAY(Integer())),
            sql_cast(bindparam("p_line_totals"), ARRAY(BigInteger())),
        )
        .table_valued("line_no", "product_id", "sku", "quantity", "unit_price", "line_total")
        .render_derived()
    )
    items = (
        insert(_ITEMS)
        .from_select(
            ["order_id", "line_no", "product_id", "sku", "quantity", "unit_price", "line_total"],
            select(
                order_id,
                lines.c.line_no,
                lines.c.product_id,
                lines.c.sku,
                lines.c.quantity,
                lines.c.unit_price,
                lines.c.line_total,
            ),
        )
        .cte("lines")
    )
    created = (
        insert(_TRANSITIONS)
        .values(
            order_id=order_id,
            from_status=None,
            to_status=OrderStatus.PENDING.value,
            actor=bindparam("p_actor", type_=Text()),
        )
        .returning(_TRANSITIONS.c.at)
        .cte("created")
    )
    event = (
        insert(OUTBOX)
        .values(
            id=func.gen_random_uuid(),
            type=bindparam("p_event_type", type_=Text()),
            subject=bindparam("p_event_subject", type_=Text()),
            subject_id=order_id,
            version=bindparam("p_event_version", type_=BigInteger()),
            user_id=bindparam("p_user_id", type_=Uuid()),
            payload=bindparam("p_event_payload", type_=JSONB()),
        )
        .cte("event")
    )
    return (
        select(placed.c.created_at, placed.c.updated_at, created.c.at)
        .select_from(placed.join(created, true()))
        .add_cte(items, event)
    )


# Built once: building a statement of this size costs more than sending it.
_write = built_once(_write_statement)


async def _create(
    *, session: AsyncSession, buyer: Identity, order_in: OrderCreate, lines: Sequence[StockLine]
) -> OrderPublic:
    """Price the lines from the catalog and write the order; the stock is reserved last."""
    assert buyer.user_id is not None  # the route admits users only
    wanted = [line.product_id for line in order_in.items]
    found = await session.execute(_PRICE, {"p_ids": wanted})
    products = {
        row.id: _Priced(row.sku, row.price, row.currency, row.stock, row.active) for row in found
    }
    _check_orderable(order_in, products)
    # Sold out already: refuse before writing anything.
    stock.refuse_short(lines, {key: (one.sku, one.stock) for key, one in products.items()})

    items: list[dict[str, Any]] = [
        {
            "product_id": line.product_id,
            "sku": products[line.product_id].sku,
            "quantity": line.quantity,
            "unit_price": products[line.product_id].price,
            "line_total": products[line.product_id].price * line.quantity,
        }
        for line in order_in.items
    ]
    order_id = uuid.uuid4()
    total = sum(products[line.product_id].price * line.quantity for line in order_in.items)
    currency = products[wanted[0]].currency
    event = order_event_values(
        order_id=order_id,
        user_id=buyer.user_id,
        version=1,
        status=OrderStatus.PENDING,
        previous=None,
        actor=buyer.subject,
        total=total,
        currency=currency,
    )
    written = (
        await session.execute(
            _write(),
            {
                "p_order_id": order_id,
                "p_user_id": buyer.user_id,
                "p_currency": currency,
                "p_total": total,
                "p_note": order_in.note,
                "p_line_nos": list(range(1, len(items) + 1)),
                "p_product_ids": [item["product_id"] for item in items],
                "p_skus": [item["sku"] for item in items],
                "p_quantities": [item["quantity"] for item in items],
                "p_unit_prices": [item["unit_price"] for item in items],
                "p_line_totals": [item["line_total"] for item in items],
                "p_actor": buyer.subject,
                "p_event_type": event["type"],
                "p_event_subject": event["subject"],
                "p_event_version": event["version"],
                "p_event_payload": event["payload"],
            },
        )
    ).one()
    return OrderPublic.model_validate(
        {
            "id": order_id,
            "user_id": buyer.user_id,
            "status": OrderStatus.PENDING,
            "items": items,
            "total": total,
            "currency": currency,
            "note": order_in.note,
            "transitions": [
                {"from": None, "to": OrderStatus.PENDING, "actor": buyer.subject, "at": written.at}
            ],
            "created_at": written.created_at,
            "updated_at": written.updated_at,
        }
    )


def _check_orderable(order_in: OrderCreate, products: dict[uuid.UUID, _Priced]) -> None:
    errors: list[FieldError] = []
    for index, line in enumerate(order_in.items):
        product = products.get(line.product_id)
        if product is None:
            message = "no such product"
        elif not product.active:
            message = f"product {product.sku} is not for sale"
        else:
            continue
        errors.append(
            {"field": f"items[{index}].product_id", "location": "body", "message": message}
        )
    if errors:
        raise ProblemError(
            PRODUCT_NOT_ORDERABLE,
            "Some lines name products that are unknown or not for sale.",
            errors=errors,
        )
    currencies = {products[line.product_id].currency for line in order_in.items}
    if len(currencies) > 1:
        raise ProblemError(
            MIXED_CURRENCIES,
            "All lines of an order must be priced in one currency; found "
            + ", ".join(sorted(currencies))
            + ".",
            errors=[
                {
                    "field": f"items[{index}].product_id",
                    "location": "body",
                    "message": f"priced in {products[line.product_id].currency}",
                }
                for index, line in enumerate(order_in.items)
            ],
        )


# -- reads ----------------------------------------------------------------------------------


async def get_order(*, session: AsyncSession, viewer: Identity, order_id: uuid.UUID) -> OrderPublic:
    async with session.begin():
        order = await session.scalar(with_lines(select(Order).where(Order.id == order_id)))
    if order is None or not may_see(viewer, order):
        raise order_not_found(order_id)
    return OrderPublic.model_validate(order)


# A service client whose token carries this scope reads anyone's orders (the users
# service's admin console shows a user's recent orders with one).
READ_ALL_SCOPE = "orders:read"


def _admin_only_filter(name: str) -> ProblemError:
    return ProblemError(
        FORBIDDEN,
        f"Only administrators and service clients with {READ_ALL_SCOPE} may filter by {name}.",
        errors=[{"field": name, "location": "query", "message": "administrators only"}],
    )


def _reads_all_orders(viewer: Identity) -> bool:
    return viewer.is_admin or (viewer.user_id is None and READ_ALL_SCOPE in viewer.scopes)


def _owner_filter(viewer: Identity, params: OrderListParams) -> tuple[str, ColumnElement[bool]]:
    if params.all_users:
        if not _reads_all_orders(viewer):
            raise _admin_only_filter("all_users")
        return "*", true()
    if params.user_id is not None and params.user_id != viewer.user_id:
        if not _reads_all_orders(viewer):
            raise _admin_only_filter("user_id")
        return str(params.user_id), Order.user_id == params.user_id
    if viewer.user_id is None:
        return "-", false()  # a service client owns no orders
    return str(viewer.user_id), Order.user_id == viewer.user_id


def list_statement(
    viewer: Identity, params: OrderListParams
) -> tuple[Select[Order], Sequence[Any]]:
    """The query of one page of orders (its lines and transitions are loaded after it, by
    order id), and the scope its cursors are bound to. Keyset all the way: the cursor's
    ``(created_at, id)`` bounds an index range (``ix_orders_user_id_created_at_id``, or
    ``ix_orders_created_at_id`` across users), so a deep page costs what the first does."""
    owner, owner_clause = _owner_filter(viewer, params)
    statement = select(Order).where(owner_clause)
    if params.status is not None:
        statement = statement.where(Order.status == params.status.value)
    if params.created_after is not None:
        statement = statement.where(Order.created_at >= params.created_after)
    if params.created_before is not None:
        statement = statement.where(Order.created_at < params.created_before)
    query_scope: Sequence[Any] = (
        "orders",
        owner,
        params.status,
        params.created_after,
        params.created_before,
    )
    if params.cursor is not None:
        after = decode_cursor(params.cursor, query=query_scope, key_type=_ORDER_KEY)
        statement = statement.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    statement = statement.order_by(Order.created_at.desc(), Order.id.desc())
    return statement.limit(params.limit + 1), query_scope


async def list_orders(
    *, session: AsyncSession, viewer: Identity, params: OrderListParams
) -> Page[OrderPublic]:
    statement, query_scope = list_statement(viewer, params)
    async with session.begin():
        rows = list((await session.scalars(with_lines(statement))).all())
    items = [OrderPublic.model_validate(row) for row in rows[: params.limit]]
    next_cursor = None
    if len(rows) > params.limit:
        last = items[-1]
        next_cursor = encode_cursor(query=query_scope, key=(last.created_at.isoformat(), last.id))
    return Page[OrderPublic](items=items, next_cursor=next_cursor)


async def summarize(*, session: AsyncSession, viewer: Identity) -> OrderSummary:
    """How many of the caller's own orders are in each status (every status listed)."""
    counts = dict.fromkeys(OrderStatus, 0)
    if viewer.user_id is not None:
        async with session.begin():
            rows = await session.execute(
                select(Order.status, func.count())
                .where(Order.user_id == viewer.user_id)
                .group_by(Order.status)
            )
            for status, count in rows:
                counts[OrderStatus(status)] = count
    return OrderSummary(counts_by_status=counts, total=sum(counts.values()))
