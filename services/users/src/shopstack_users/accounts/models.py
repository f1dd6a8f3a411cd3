"""Accounts: one row per user, roles on the row."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shopstack_users.models import Base

CUSTOMER = "customer"
ADMIN = "admin"
ROLES = (CUSTOMER, ADMIN)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "cardinality(roles) > 0 AND roles <@ ARRAY['customer', 'admin']::varchar[]",
            name="known_roles",
        ),
        # The admin list pages through users in creation order.
        Index("ix_users_created_at_id", "created_at", "id"),
        # `email LIKE 'prefix%'` can use this one whatever the database's collation is.
        Index(
            "ix_users_email_pattern",
            "email",
            postgresql_ops={"email": "varchar_pattern_ops"},
        ),
    )
    # updated_at is set by the database on UPDATE; fetch it back in the same statement.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declared shape

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Stored normalised (trimmed, lower-cased); the unique index makes duplicates impossible.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Roles live on the row: every read of a user needs them, and there are two.
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{customer}'::varchar[]")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
