"""The users schema. Every table lives in the service's own PostgreSQL schema."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shopstack_common.migrations import service_metadata

SCHEMA = "users"

CUSTOMER = "customer"
ADMIN = "admin"
ROLES = (CUSTOMER, ADMIN)


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


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


class ServiceClient(Base):
    """An OAuth2 confidential client for the client_credentials grant (service to service)."""

    __tablename__ = "service_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), server_default="")
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefreshToken(Base):
    """One issued refresh token. Only its SHA-256 is stored: the token itself is 256 random
    bits, so a fast hash is enough and lets a presented token be found by index.

    Every refresh rotates the token: the old row is marked ``rotated_at`` and a new one joins
    the same ``family_id``. Presenting a rotated token again means two parties hold it, so the
    whole family is revoked."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family_id", "family_id"),
        Index("ix_refresh_tokens_user_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
