"""The order life cycle: which status may follow which.

pending -> paid -> shipped -> delivered, and pending or paid -> cancelled (which returns
the stock). Delivered and cancelled are final.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


NEXT_STATUSES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

# Statuses in which the order still holds its stock; leaving them for cancelled returns it.
HOLDS_STOCK = frozenset({OrderStatus.PENDING, OrderStatus.PAID})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in NEXT_STATUSES[current]


def returns_stock(current: OrderStatus, target: OrderStatus) -> bool:
    return target is OrderStatus.CANCELLED and current in HOLDS_STOCK
