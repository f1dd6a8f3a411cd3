"""Account operations. Views call these; they know nothing about HTTP."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopstack_users.extensions import Cache
from shopstack_users.models import ADMIN, CUSTOMER, RefreshToken, User
from shopstack_users.passwords import Passwords, policy_violation

CACHE_PREFIX = "users:user:"


class EmailTakenError(Exception):
    pass


class LastAdminError(Exception):
    """The change would leave no active admin."""


class WrongPasswordError(Exception):
    pass


class WeakPasswordError(Exception):
    """The new password breaks the policy; the message says how."""


class InvalidCursorError(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class UserView:
    """The public part of a user: what is cached and what clients see."""

    id: uuid.UUID
    email: str
    full_name: str
    roles: tuple[str, ...]
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            roles=tuple(sorted(user.roles)),
            is_active=user.is_active,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": str(self.id),
                "email": self.email,
                "full_name": self.full_name,
                "roles": list(self.roles),
                "is_active": self.is_active,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> UserView:
        data = json.loads(raw)
        return cls(
            id=uuid.UUID(data["id"]),
            email=data["email"],
            full_name=data["full_name"],
            roles=tuple(data["roles"]),
            is_active=data["is_active"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
        )


# -- reads through the cache ---------------------------------------------------------------


def get_user_view(
    *, session: Session, cache: Cache, user_id: uuid.UUID, ttl_seconds: int
) -> UserView | None:
    """Cache-aside read. Redis errors count as a miss: the read goes on to PostgreSQL."""
    key = f"{CACHE_PREFIX}{user_id}"
    try:
        cached = cache.client.get(key)
    except redis.RedisError as error:
        cache.failed("users.cache_get", error)
        cached = None
    if cached:
        try:
            return UserView.from_json(str(cached))
        except (ValueError, KeyError, TypeError):
            pass  # written by an older version: read it afresh below
    user = session.get(User, user_id)
    if user is None:
        return None
    view = UserView.of(user)
    try:
        cache.client.set(key, view.to_json(), ex=ttl_seconds)
    except redis.RedisError as error:
        cache.failed("users.cache_set", error)
    return view


def invalidate(*, cache: Cache, user_id: uuid.UUID) -> None:
    """Drop the cached copy after a write. Called after the commit, so a reader cannot
    re-cache the old row from a transaction that had not committed yet. When Redis does not
    answer, the entry expires by its TTL."""
    try:
        cache.client.delete(f"{CACHE_PREFIX}{user_id}")
    except redis.RedisError as error:
        cache.failed("users.cache_invalidate", error)


# -- accounts --------------------------------------------------------------------------------


def register_user(
    *,
    session: Session,
    passwords: Passwords,
    email: str,
    password: str,
    full_name: str,
    roles: Sequence[str] = (CUSTOMER,),
) -> User:
    user = User(
        email=normalise_email(email),
        full_name=full_name.strip(),
        password_hash=passwords.hash(password),
        roles=list(roles),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise EmailTakenError(email) from error
    return user


def find_by_email(*, session: Session, email: str) -> User | None:
    return session.execute(
        select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()


def update_profile(
    *,
    session: Session,
    cache: Cache,
    passwords: Passwords,
    user_id: uuid.UUID,
    full_name: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> User | None:
    """The owner's own changes. A new password needs the current one and ends every
    session (refresh token) the user had."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        return None
    if password is not None:
        if current_password is None or not passwords.verify(user.password_hash, current_password):
            session.rollback()
            raise WrongPasswordError
        problem = policy_violation(password, email=user.email)
        if problem:
            session.rollback()
            raise WeakPasswordError(f"Password {problem}.")
        user.password_hash = passwords.hash(password)
        revoke_all_refresh_tokens(session=session, user_id=user.id)
    if full_name is not None:
        user.full_name = full_name.strip()
    session.commit()
    invalidate(cache=cache, user_id=user.id)
    return user


def revoke_all_refresh_tokens(*, session: Session, user_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


# -- administration --------------------------------------------------------------------------


def _encode_cursor(user: User) -> str:
    raw = json.dumps([user.created_at.isoformat(), str(user.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, user_id = json.loads(raw)
        position = datetime.fromisoformat(created_at), uuid.UUID(user_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise InvalidCursorError(cursor) from error
    if position[0].tzinfo is None:
        raise InvalidCursorError(cursor)
    return position


def list_users(
    *,
    session: Session,
    limit: int,
    cursor: str | None = None,
    email_prefix: str | None = None,
    role: str | None = None,
) -> tuple[list[User], str | None]:
    """One page in creation order (keyset pagination: the cursor is the last row's
    position, so pages stay stable while users are added)."""
    query = select(User).order_by(User.created_at, User.id).limit(limit + 1)
    if cursor:
        created_at, user_id = _decode_cursor(cursor)
        query = query.where(tuple_(User.created_at, User.id) > tuple_(created_at, user_id))
    if email_prefix:
        query = query.where(User.email.startswith(normalise_email(email_prefix), autoescape=True))
    if role:
        query = query.where(User.roles.contains([role]))
    users = list(session.execute(query).scalars())
    if len(users) > limit:
        return users[:limit], _encode_cursor(users[limit - 1])
    return users, None


def _lock_admins(session: Session) -> None:
    """Serialise changes that could remove the last admin (ends with the transaction)."""
    key = zlib.crc32(b"shopstack-users:admins")
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _other_active_admins(session: Session, user_id: uuid.UUID) -> int:
    return session.execute(
        select(func.count())
        .select_from(User)
        .where(User.roles.contains([ADMIN]), User.is_active.is_(True), User.id != user_id)
    ).scalar_one()


def _guard_last_admin(session: Session, user: User, *, keeps_admin: bool) -> None:
    if ADMIN in user.roles and user.is_active and not keeps_admin:
        _lock_admins(session)
        if _other_active_admins(session, user.id) == 0:
            session.rollback()
            raise LastAdminError


def update_user(
    *,
    session: Session,
    cache: Cache,
    user_id: uuid.UUID,
    email: str | None = None,
    full_name: str | None = None,
    is_active: bool | None = None,
) -> User | None:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        return None
    if is_active is False:
        _guard_last_admin(session, user, keeps_admin=False)
    if email is not None:
        user.email = normalise_email(email)
    if full_name is not None:
        user.full_name = full_name.strip()
    if is_active is not None:
        if not is_active and user.is_active:
            revoke_all_refresh_tokens(session=session, user_id=user.id)
        user.is_active = is_active
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise EmailTakenError(email) from error
    invalidate(cache=cache, user_id=user.id)
    return user


def set_roles(
    *, session: Session, cache: Cache, user_id: uuid.UUID, roles: Sequence[str]
) -> User | None:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        return None
    _guard_last_admin(session, user, keeps_admin=ADMIN in roles)
    user.roles = sorted(set(roles))
    session.commit()
    invalidate(cache=cache, user_id=user.id)
    return user


def delete_user(*, session: Session, cache: Cache, user_id: uuid.UUID) -> bool:
    """Deletes the user and, by cascade, their refresh tokens."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        return False
    _guard_last_admin(session, user, keeps_admin=False)
    session.delete(user)
    session.commit()
    invalidate(cache=cache, user_id=user_id)
    return True


def ensure_admin(
    *,
    session: Session,
    passwords: Passwords,
    email: str,
    password: str,
    full_name: str = "Administrator",
) -> tuple[User, bool]:
    """Create ``email`` as an active admin, or promote the existing account (its password
    is left alone). Idempotent; returns the user and whether it was created."""
    user = find_by_email(session=session, email=email)
    if user is None:
        try:
            created = register_user(
                session=session,
                passwords=passwords,
                email=email,
                password=password,
                full_name=full_name,
                roles=(ADMIN, CUSTOMER),
            )
        except EmailTakenError:
            # Another replica bootstrapped at the same moment: promote what it made.
            return ensure_admin(
                session=session, passwords=passwords, email=email, password=password
            )
        return created, True
    if ADMIN not in user.roles or not user.is_active:
        user.roles = sorted({*user.roles, ADMIN})
        user.is_active = True
        session.commit()
    return user, False
