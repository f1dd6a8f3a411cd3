"""Placing orders against the catalog's stock, and moving them through their life cycle.

Stock is reserved in the transaction that creates the order: the order's products are
locked with ``SELECT ... ORDER BY id FOR UPDATE``, checked, and decremented. Every
transaction that touches several products locks them in id order (placing, cancelling),
and orders are only ever locked before products, so concurrent multi-item orders queue on
each other instead of deadlocking. The ``stock >= 0`` CHECK is the last line of defence.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, false, func, select, true, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shopstack_common.fastapi_support import ProblemError
from shopstack_common.identity import Identity
from shopstack_common.problem import FieldError
from shopstack_orders.cache import ProductCache
from shopstack_orders.catalog.models import Product
from shopstack_orders.idempotency import service as idempotency
from shopstack_orders.idempotency.schemas import Outcome
from shopstack_orders.metrics import ORDER_TRANSITIONS, ORDERS_PLACED, OUT_OF_STOCK_REJECTIONS
from shopstack_orders.orders.lifecycle import (
    NEXT_STATUSES,
    OrderStatus,
    can_transition,
    returns_stock,
)
from shopstack_orders.orders.models import Order, OrderItem, OrderTransition
from shopstack_orders.orders.schemas import (
    OrderCreate,
    OrderListParams,
    OrderPublic,
    OrderSummary,
)
from shopstack_orders.pagination import Page, decode_cursor, encode_cursor

_ORDER_KEY: TypeAdapter[tuple[datetime, uuid.UUID]] = TypeAdapter(tuple[datetime, uuid.UUID])


def order_not_found(order_id: uuid.UUID) -> ProblemError:
    # Also the answer for someone else's order: whether it exists is not theirs to know.
    return ProblemError(
        404, slug="order-not-found", title="Not found", detail=f"No order {order_id}."
    )


def _with_lines(statement: Select[Order]) -> Select[Order]:
    return statement.options(selectinload(Order.items), selectinload(Order.transitions))


async def _load(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    statement = _with_lines(select(Order).where(Order.id == order_id))
    result = await session.scalars(statement.execution_options(populate_existing=True))
    return result.one_or_none()


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

    async def reserve_and_create() -> OrderPublic:
        return await _reserve_and_create(session=session, buyer=buyer, order_in=order_in)

    outcome = await idempotency.run(
        session=session, request=request, policy=policy, status_code=201, action=reserve_and_create
    )
    if outcome.result is not None:
        ORDERS_PLACED.labels(outcome.result.currency).inc()
        await cache.invalidate(item.product_id for item in outcome.result.items)
    return outcome


async def _reserve_and_create(
    *, session: AsyncSession, buyer: Identity, order_in: OrderCreate
) -> OrderPublic:
    assert buyer.user_id is not None  # the route admits users only
    wanted = {line.product_id: line.quantity for line in order_in.items}
    # The lock order is the same in every transaction (id order), so no two wait on each other
    # in a cycle.
    locked = await session.scalars(
        select(Product).where(Product.id.in_(wanted)).order_by(Product.id).with_for_update()
    )
    products = {product.id: product for product in locked}
    _check_orderable(order_in, products)
    _check_stock(order_in, products)
    for product_id in sorted(wanted):
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock - wanted[product_id])
        )

    lines = [
        OrderItem(
            line_no=number,
            product_id=line.product_id,
            sku=products[line.product_id].sku,
            quantity=line.quantity,
            unit_price=products[line.product_id].price,
            line_total=products[line.product_id].price * line.quantity,
        )
        for number, line in enumerate(order_in.items, start=1)
    ]
    order = Order(
        user_id=buyer.user_id,
        status=OrderStatus.PENDING.value,
        currency=products[order_in.items[0].product_id].currency,
        total=sum(line.line_total for line in lines),
        note=order_in.note,
        items=lines,
        transitions=[
            OrderTransition(from_status=None, to_status=OrderStatus.PENDING, actor=buyer.subject)
        ],
    )
    session.add(order)
    await session.flush()
    loaded = await _load(session, order.id)
    assert loaded is not None
    return OrderPublic.model_validate(loaded)


def _check_orderable(order_in: OrderCreate, products: dict[uuid.UUID, Product]) -> None:
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
            422,
            slug="product-not-orderable",
            title="Product not orderable",
            detail="Some lines name products that are unknown or not for sale.",
            errors=errors,
        )
    currencies = {products[line.product_id].currency for line in order_in.items}
    if len(currencies) > 1:
        raise ProblemError(
            422,
            slug="mixed-currencies",
            title="Mixed currencies",
            detail="All lines of an order must be priced in one currency; found "
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


def _check_stock(order_in: OrderCreate, products: dict[uuid.UUID, Product]) -> None:
    short = [
        (index, line, products[line.product_id])
        for index, line in enumerate(order_in.items)
        if products[line.product_id].stock < line.quantity
    ]
    if not short:
        return
    OUT_OF_STOCK_REJECTIONS.inc()
    raise ProblemError(
        409,
        slug="out-of-stock",
        title="Out of stock",
        detail="Not enough stock for "
        + ", ".join(f"{product.sku} ({product.stock} available)" for _, _, product in short)
        + ".",
        errors=[
            {
                "field": f"items[{index}].quantity",
                "location": "body",
                "message": f"{product.stock} available",
            }
            for index, _, product in short
        ],
        extra={
            "unavailable": [
                {
                    "product_id": str(product.id),
                    "sku": product.sku,
                    "requested": line.quantity,
                    "available": product.stock,
                }
                for _, line, product in short
            ]
        },
    )


# -- life cycle -----------------------------------------------------------------------------


async def change_status(
    *,
    session: AsyncSession,
    cache: ProductCache,
    policy: idempotency.IdempotencyPolicy,
    actor: Identity,
    order_id: uuid.UUID,
    target: OrderStatus,
    idempotency_key: str | None = None,
) -> Outcome[OrderPublic]:
    """Move an order to ``target``; cancelling returns its stock. Only administrators and
    (for their own orders) owners get here; the route checks which may call."""
    operation = "cancel_order" if target is OrderStatus.CANCELLED else "transition_order"
    request = idempotency.idempotent_request(
        caller=actor.subject,
        key=idempotency_key,
        operation=operation,
        payload={"order_id": str(order_id), "to": target.value},
    )
    returned: list[uuid.UUID] = []

    async def transition() -> OrderPublic:
        return await _transition(
            session=session, actor=actor, order_id=order_id, target=target, returned=returned
        )

    outcome = await idempotency.run(
        session=session, request=request, policy=policy, status_code=200, action=transition
    )
    if returned:
        await cache.invalidate(returned)
    return outcome


async def _transition(
    *,
    session: AsyncSession,
    actor: Identity,
    order_id: uuid.UUID,
    target: OrderStatus,
    returned: list[uuid.UUID],
) -> OrderPublic:
    # The order row is locked first: concurrent changes to one order run one after another.
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None or not _may_see(actor, order):
        raise order_not_found(order_id)
    current = OrderStatus(order.status)
    if not can_transition(current, target):
        allowed = sorted(status.value for status in NEXT_STATUSES[current])
        raise ProblemError(
            409,
            slug="illegal-transition",
            title="Illegal status change",
            detail=f"An order that is {current.value} cannot become {target.value}; "
            + (f"it can become {', '.join(allowed)}." if allowed else "its status is final."),
            extra={"from": current.value, "to": target.value, "allowed": allowed},
        )
    if returns_stock(current, target):
        items = await session.scalars(
            select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.product_id)
        )
        for item in items:
            await session.execute(
                update(Product)
                .where(Product.id == item.product_id)
                .values(stock=Product.stock + item.quantity)
            )
            returned.append(item.product_id)
    order.status = target.value
    session.add(
        OrderTransition(
            order_id=order.id, from_status=current, to_status=target, actor=actor.subject
        )
    )
    await session.flush()
    ORDER_TRANSITIONS.labels(current.value, target.value).inc()
    loaded = await _load(session, order_id)
    assert loaded is not None
    return OrderPublic.model_validate(loaded)


def _may_see(viewer: Identity, order: Order) -> bool:
    return viewer.is_admin or (viewer.user_id is not None and order.user_id == viewer.user_id)


# -- reads ----------------------------------------------------------------------------------


async def get_order(*, session: AsyncSession, viewer: Identity, order_id: uuid.UUID) -> OrderPublic:
    order = await _load(session, order_id)
    if order is None or not _may_see(viewer, order):
        raise order_not_found(order_id)
    return OrderPublic.model_validate(order)


def _admin_only_filter(name: str) -> ProblemError:
    return ProblemError(
        403,
        slug="forbidden",
        title="Forbidden",
        detail=f"Only administrators may filter by {name}.",
        errors=[{"field": name, "location": "query", "message": "administrators only"}],
    )


def _owner_filter(viewer: Identity, params: OrderListParams) -> tuple[str, ColumnElement[bool]]:
    if params.all_users:
        if not viewer.is_admin:
            raise _admin_only_filter("all_users")
        return "*", true()
    if params.user_id is not None and params.user_id != viewer.user_id:
        if not viewer.is_admin:
            raise _admin_only_filter("user_id")
        return str(params.user_id), Order.user_id == params.user_id
    if viewer.user_id is None:
        return "-", false()  # a service client owns no orders
    return str(viewer.user_id), Order.user_id == viewer.user_id


async def list_orders(
    *, session: AsyncSession, viewer: Identity, params: OrderListParams
) -> Page[OrderPublic]:
    owner, owner_clause = _owner_filter(viewer, params)
    statement = select(Order).where(owner_clause)
    if params.status is not None:
        statement = statement.where(Order.status == params.status.value)
    if params.created_after is not None:
        statement = statement.where(Order.created_at >= params.created_after)
    if params.created_before is not None:
        statement = statement.where(Order.created_at < params.created_before)
    query_scope: Sequence[Any] = (
        "orders", owner, params.status, params.created_after, params.created_before,
    )  # fmt: skip
    if params.cursor is not None:
        after = decode_cursor(params.cursor, query=query_scope, key_type=_ORDER_KEY)
        statement = statement.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    statement = statement.order_by(Order.created_at.desc(), Order.id.desc())
    rows = list((await session.scalars(_with_lines(statement.limit(params.limit + 1)))).all())
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
        rows = await session.execute(
            select(Order.status, func.count())
            .where(Order.user_id == viewer.user_id)
            .group_by(Order.status)
        )
        for status, count in rows:
            counts[OrderStatus(status)] = count
    return OrderSummary(counts_by_status=counts, total=sum(counts.values()))
