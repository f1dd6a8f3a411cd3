"""Writing events: the one place that adds rows to the outbox.

Callers pass the session of the transaction that makes the change, so an event exists
exactly when its change committed. Stock events are added right after the stock UPDATE,
while its row lock is held, and order events after the order row is written or locked: a
later event of the same order or product is therefore inserted only once the earlier one
committed, which is what keeps them in order for the relay (``events.models``).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    Table,
    Text,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CTE

from shopstack_orders.events.models import OutboxEvent
from shopstack_orders.orders.lifecycle import OrderStatus


class EventType(StrEnum):
    ORDER_PLACED = "order.placed"
    ORDER_PAID = "order.paid"
    ORDER_SHIPPED = "order.shipped"
    ORDER_DELIVERED = "order.delivered"
    ORDER_CANCELLED = "order.cancelled"
    STOCK_CHANGED = "stock.changed"


ORDER_EVENT_TYPES: dict[OrderStatus, EventType] = {
    OrderStatus.PENDING: EventType.ORDER_PLACED,
    OrderStatus.PAID: EventType.ORDER_PAID,
    OrderStatus.SHIPPED: EventType.ORDER_SHIPPED,
    OrderStatus.DELIVERED: EventType.ORDER_DELIVERED,
    OrderStatus.CANCELLED: EventType.ORDER_CANCELLED,
}


class StockReason(StrEnum):
    RESERVED = "reserved"  # an order took units
    RELEASED = "released"  # a cancelled order gave them back
    RESTOCKED = "restocked"  # a delivery added units


OUTBOX = cast(Table, OutboxEvent.__table__)


def order_event_values(
    *,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    version: int,
    status: OrderStatus,
    previous: OrderStatus | None,
    actor: str,
    total: int,
    currency: str,
) -> dict[str, Any]:
    """The outbox row of an order event, for ``add_order_event`` or a Core INSERT."""
    payload: dict[str, Any] = {
        "order_id": str(order_id),
        "user_id": str(user_id),
        "status": status.value,
        "previous_status": previous.value if previous is not None else None,
        "actor": actor,
        "total": total,
        "currency": currency,
    }
    return {
        "type": ORDER_EVENT_TYPES[status].value,
        "subject": "order",
        "subject_id": order_id,
        "version": version,
        "user_id": user_id,
        "payload": payload,
    }


def add_order_event(
    *,
    session: AsyncSession,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    version: int,
    status: OrderStatus,
    previous: OrderStatus | None,
    actor: str,
    total: int,
    currency: str,
) -> None:
    """The order reached ``status``; ``version`` is its number of transitions so far."""
    session.add(
        OutboxEvent(
            **order_event_values(
                order_id=order_id,
                user_id=user_id,
                version=version,
                status=status,
                previous=previous,
                actor=actor,
                total=total,
                currency=currency,
            )
        )
    )


def add_stock_event(
    *,
    session: AsyncSession,
    product_id: uuid.UUID,
    version: int,
    stock: int,
    change: int,
    reason: StockReason,
) -> None:
    """The product's stock became ``stock`` (``change`` units, signed); ``version`` is its
    ``stock_version`` after the change."""
    session.add(
        OutboxEvent(
            type=EventType.STOCK_CHANGED.value,
            subject="product",
            subject_id=product_id,
            version=version,
            user_id=None,
            payload={
                "product_id": str(product_id),
                "stock": stock,
                "change": change,
                "reason": reason.value,
            },
        )
    )


def stock_event_from(changed: CTE, *, change: ColumnElement[int], reason: StockReason) -> Insert:
    """An INSERT of the ``stock.changed`` event of each row of ``changed``, a CTE over a stock
    UPDATE ... RETURNING ``id, stock, stock_version``: the event goes in with the change, in
    the same statement, so the stock change and its event cost one round trip. The payload is
    the one ``add_stock_event`` writes."""
    payload = func.jsonb_build_object(
        literal_column("'product_id'"),
        sql_cast(changed.c.id, Text),
        literal_column("'stock'"),
        changed.c.stock,
        literal_column("'change'"),
        change,
        literal_column("'reason'"),
        literal(reason.value, Text),
    )
    return insert(OUTBOX).from_select(
        ["id", "type", "subject", "subject_id", "version", "payload"],
        select(
            func.gen_random_uuid(),
            literal(EventType.STOCK_CHANGED.value, Text),
            literal("product", Text),
            changed.c.id,
            changed.c.stock_version,
            payload,
        ),
    )
