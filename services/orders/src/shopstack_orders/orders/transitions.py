"""Changing an order's status: the life cycle's rules (``lifecycle``) applied to a stored
order, under its row lock, with its transition record, its event and, for a cancel, its
stock given back."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shopstack_common.identity import Identity
from shopstack_common.problems import ILLEGAL_TRANSITION, ProblemError
from shopstack_orders.cache import ProductCache
from shopstack_orders.catalog import stock
from shopstack_orders.catalog.stock import StockLine
from shopstack_orders.events.outbox import add_order_event
from shopstack_orders.idempotency import service as idempotency
from shopstack_orders.idempotency.schemas import Outcome
from shopstack_orders.metrics import ORDER_TRANSITIONS
from shopstack_orders.orders.lifecycle import (
    NEXT_STATUSES,
    OrderStatus,
    can_transition,
    returns_stock,
)
from shopstack_orders.orders.models import Order, OrderTransition
from shopstack_orders.orders.schemas import OrderPublic
from shopstack_orders.orders.service import may_see, order_not_found, with_lines


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
    """Move an order to ``target``; cancelling returns its stock. Owners may call this only
    to cancel their own orders (the route decides who gets here)."""
    operation = "cancel_order" if target is OrderStatus.CANCELLED else "transition_order"
    request = idempotency.idempotent_request(
        caller=actor.subject,
        key=idempotency_key,
        operation=operation,
        payload={"order_id": str(order_id), "to": target.value},
    )
    # Filled by the transition when it cancels an order that holds stock.
    returned: list[StockLine] = []

    async def transition() -> OrderPublic:
        return await _transition(
            session=session, actor=actor, order_id=order_id, target=target, returned=returned
        )

    async def release() -> None:
        await stock.release(session=session, lines=returned)

    outcome = await idempotency.run(
        session=session,
        request=request,
        policy=policy,
        status_code=200,
        action=transition,
        last=release,
    )
    if outcome.result is not None and returned:
        await cache.invalidate(line.product_id for line in returned)
    return outcome


async def _transition(
    *,
    session: AsyncSession,
    actor: Identity,
    order_id: uuid.UUID,
    target: OrderStatus,
    returned: list[StockLine],
) -> OrderPublic:
    # The order row is locked first: concurrent changes to one order run one after another.
    order = await session.scalar(
        with_lines(select(Order).where(Order.id == order_id).with_for_update(of=Order))
    )
    if order is None or not may_see(actor, order):
        raise order_not_found(order_id)
    current = OrderStatus(order.status)
    if not can_transition(current, target):
        allowed = sorted(status.value for status in NEXT_STATUSES[current])
        raise ProblemError(
            ILLEGAL_TRANSITION,
            f"An order that is {current.value} cannot become {target.value}; "
            + (f"it can become {', '.join(allowed)}." if allowed else "its status is final."),
            extra={"from": current.value, "to": target.value, "allowed": allowed},
        )
    if returns_stock(current, target):
        returned.extend(StockLine(item.product_id, item.quantity) for item in order.items)
    order.status = target.value
    order.transitions.append(
        OrderTransition(from_status=current, to_status=target, actor=actor.subject)
    )
    add_order_event(
        session=session,
        order_id=order.id,
        user_id=order.user_id,
        version=len(order.transitions),
        status=target,
        previous=current,
        actor=actor.subject,
        total=order.total,
        currency=order.currency,
    )
    await session.flush()
    ORDER_TRANSITIONS.labels(current.value, target.value).inc()
    return OrderPublic.model_validate(order)
