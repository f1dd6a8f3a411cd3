"""Recording and reading the audit trail.

``record`` runs inside the caller's unit of work: the event commits with the change it
describes, or neither does. Whoever changes users, clients or sessions on an admin's behalf
takes an ``Actor`` and records what it did; a refused change records nothing.
"""

from __future__ import annotations

import getpass
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.context import current_request_id
from shopstack_common.identity import Identity
from shopstack_common.problems import INVALID_CURSOR, ProblemError
from shopstack_users.audit.models import AuditEvent

Sessions = sessionmaker[Session]

# Every action the trail knows, with how the console names it.
ACTIONS: Mapping[str, str] = {
    "console.signed_in": "signed in to the console",
    "console.signed_out": "signed out of the console",
    "user.updated": "changed a user's profile",
    "user.roles_set": "set a user's roles",
    "user.disabled": "disabled a user",
    "user.enabled": "enabled a user",
    "user.deleted": "deleted a user",
    "user.signed_out_everywhere": "signed a user out everywhere",
    "client.created": "created an OAuth client",
    "client.secret_rotated": "rotated an OAuth client's secret",
    "client.deleted": "deleted an OAuth client",
}


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where."""

    label: str
    address: str | None
    user_id: uuid.UUID | None = None

    @classmethod
    def of_identity(cls, identity: Identity, *, email: str | None, address: str | None) -> Actor:
        """A caller of the API: a user (by email, when known) or a service client."""
        if identity.user_id is not None:
            return cls(
                label=email or str(identity.user_id), address=address, user_id=identity.user_id
            )
        return cls(label=f"client:{identity.client_id}", address=address)

    @classmethod
    def command_line(cls) -> Actor:
        """Someone running ``shopstack-users`` on a machine with access to the database."""
        return cls(label=f"cli:{getpass.getuser()}@{socket.gethostname()}", address=None)


@dataclass(frozen=True)
class Target:
    type: str
    id: str
    label: str


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: Target,
    details: Mapping[str, Any] | None = None,
) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    session.add(
        AuditEvent(
            actor_id=actor.user_id,
            actor=actor.label[:254],
            action=action,
            target_type=target.type,
            target_id=target.id[:254],
            target=target.label[:254],
            details=dict(details or {}),
            address=actor.address[:64] if actor.address else None,
            request_id=current_request_id(),
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    # The actor's label (an email) or the target's label or id, from its start.
    actor_prefix: str | None = None
    target_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _invalid_cursor() -> ProblemError:
    return ProblemError(
        INVALID_CURSOR,
        "The cursor was not issued by this list.",
        errors=[{"field": "cursor", "location": "query", "message": "Not a valid cursor."}],
    )


def list_events(
    *, sessions: Sessions, limit: int, where: AuditFilter, cursor: str | None = None
) -> tuple[list[AuditEvent], str | None]:
    """One page, newest first. The cursor is the last id shown: ids only grow, so the next
    page starts right after it whatever was recorded meanwhile."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if cursor:
        if not cursor.isdecimal() or len(cursor) > 19:
            raise _invalid_cursor()
        query = query.where(AuditEvent.id < int(cursor))
    if where.action:
        query = query.where(AuditEvent.action == where.action)
    if where.actor_prefix:
        query = query.where(AuditEvent.actor.startswith(where.actor_prefix, autoescape=True))
    if where.target_prefix:
        query = query.where(
            AuditEvent.target.startswith(where.target_prefix, autoescape=True)
            | (AuditEvent.target_id == where.target_prefix)
        )
    if where.since:
        query = query.where(AuditEvent.occurred_at >= where.since)
    if where.until:
        query = query.where(AuditEvent.occurred_at < where.until)
    with sessions.begin() as session:
        events = list(session.execute(query).scalars())
    if len(events) > limit:
        return events[:limit], str(events[limit - 1].id)
    return events, None
