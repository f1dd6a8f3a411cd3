"""One row per administrative action. Rows are only ever added: nothing updates or deletes
them, and they keep no foreign key to the accounts they name, so deleting a user leaves the
record of what was done to (and by) them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shopstack_users.models import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        # The list pages newest first by id; the filters narrow by these.
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_target_id_id", "target_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Who: the admin's user id when a user acted, and a label that outlives the account
    # (the email then, `client:<id>` for a service client, `cli:<user>@<host>` for a command).
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(254))
    # What: a dotted verb (`user.roles_set`) on a target (`user`, `client`), and the details
    # (before and after values; never a secret).
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(254))
    target: Mapped[str] = mapped_column(String(254))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # From where: the client address (as the login throttle sees it) and the request id.
    address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
