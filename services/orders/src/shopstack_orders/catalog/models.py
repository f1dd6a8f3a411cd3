"""Catalog tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shopstack_orders.models import Base


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        # Keyset pagination: each sort order ends in the id, which makes it total and stable.
        Index("ix_products_name_id", "name", "id"),
        Index("ix_products_price_id", "price", "id"),
    )
    # Server defaults come back with the INSERT (RETURNING), so the response is built from
    # memory instead of reading the product again.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declaration

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    price: Mapped[int]  # minor units (cents)
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(server_default=text("0"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    # Counts stock changes: the version of the product's stock events.
    stock_version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
