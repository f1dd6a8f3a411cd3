"""Order tables: the order, its priced lines, and every status change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shopstack_orders.models import Base
from shopstack_orders.orders.lifecycle import OrderStatus

_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in OrderStatus)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status_known"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        # The customer's list, newest first, and its keyset cursor.
        Index("ix_orders_user_id_created_at_id", "user_id", "created_at", "id"),
        # The administrators' list across users.
        Index("ix_orders_created_at_id", "created_at", "id"),
    )
    # Timestamps come back with the INSERT/UPDATE (RETURNING), so the response is built from
    # memory instead of reading the order again.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declaration

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING.value)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)  # minor units
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    items: Mapped[list[OrderItem]] = relationship(
        order_by="OrderItem.line_no", lazy="raise", cascade="all, delete-orphan"
    )
    transitions: Mapped[list[OrderTransition]] = relationship(
        order_by="OrderTransition.id", lazy="raise", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    """A line as it was sold: SKU and unit price are copied from the catalog at order time."""

    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("line_total = unit_price * quantity", name="line_total_consistent"),
        Index("ix_order_items_product_id", "product_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.orders.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.products.id"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    unit_price: Mapped[int]
    line_total: Mapped[int] = mapped_column(BigInteger)


class OrderTransition(Base):
    """One status change: from (``None`` for the order's creation), to, who, when."""

    __tablename__ = "order_transitions"
    __table_args__ = (Index("ix_order_transitions_order_id", "order_id"),)
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declaration

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.orders.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
