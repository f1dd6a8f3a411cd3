"""The outbox: one row per event, written in the transaction of the change it describes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shopstack_orders.models import Base


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        # What the relay claims next: unpublished rows in commit order.
        Index("ix_outbox_events_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
        # What the purge deletes: published rows past their retention.
        Index(
            "ix_outbox_events_published_at",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
    )

    # The event's identity, the key consumers drop duplicates by.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Publication order. A later event of one order or product is inserted only after the
    # earlier one committed (both hold its row lock), so its seq is always greater.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(16))  # "order" or "product"
    subject_id: Mapped[uuid.UUID]
    # 1, 2, ... per subject: the order's transition count, the product's stock version.
    version: Mapped[int] = mapped_column(BigInteger)
    # The order's owner (who may watch it); None for stock events.
    user_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
