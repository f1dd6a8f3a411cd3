"""Account operations: registration, profiles and user administration.

Each public function is one unit of work: it opens ``with sessions.begin() as session:``,
which commits when the block ends and rolls back when anything inside raises. Refusals are
``ProblemError``s of the platform's registry; nothing here knows about HTTP or Flask.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.metrics import CacheResult, observe_cache_lookup
from shopstack_common.problems import (
    EMAIL_TAKEN,
    INVALID_CURSOR,
    LAST_ADMIN,
    NOT_FOUND,
    FieldError,
    ProblemError,
    validation_error,
)
from shopstack_users.accounts.models import ADMIN, CUSTOMER, User
from shopstack_users.audit import service as audit
from shopstack_users.best_effort_redis import BestEffortRedis
from shopstack_users.fields import normalise_email
from shopstack_users.metrics import PASSWORD_REHASHES
from shopstack_users.passwords import Passwords, policy_violation
from shopstack_users.throttle import LoginThrottle
from shopstack_users.tokens.models import RefreshToken

CACHE_PREFIX = "users:user:"
# The cache's name in shopstack_cache_lookups_total.
USER_CACHE = "user"
EMAIL_CONSTRAINT = "uq_users_email"

Sessions = sessionmaker[Session]


def no_such_user() -> ProblemError:
    return ProblemError(NOT_FOUND, "No such user.")


def email_taken() -> ProblemError:
    return ProblemError(
        EMAIL_TAKEN,
        "An account with this email already exists.",
        errors=[{"field": "email", "location": "body", "message": "already registered"}],
    )


def last_admin() -> ProblemError:
    return ProblemError(LAST_ADMIN, "This would leave the platform without an active admin.")


def _field_error(field: str, message: str) -> ProblemError:
    error: FieldError = {"field": field, "location": "body", "message": message}
    return validation_error([error])


def _is_email_taken(error: IntegrityError) -> bool:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == EMAIL_CONSTRAINT


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
    *, sessions: Sessions, redis_cache: BestEffortRedis, user_id: uuid.UUID, ttl_seconds: int
) -> UserView:
    """Cache-aside read. Redis errors count as a miss: the read goes on to PostgreSQL."""
    key = f"{CACHE_PREFIX}{user_id}"
    # In a tuple, so a missing key (None) differs from Redis not answering.
    answer = redis_cache.run("users.cache_get", lambda client: (client.get(key),))
    if answer is None:
        observe_cache_lookup(USER_CACHE, CacheResult.FALLBACK)
    else:
        found = _cached_view(answer[0])
        observe_cache_lookup(USER_CACHE, CacheResult.MISS if found is None else CacheResult.HIT)
        if found is not None:
            return found
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise no_such_user()
        view = UserView.of(user)
    redis_cache.run(
        "users.cache_set", lambda client: client.set(key, view.to_json(), ex=ttl_seconds)
    )
    return view


def _cached_view(cached: object) -> UserView | None:
    if not cached:
        return None
    try:
        return UserView.from_json(str(cached))
    except (ValueError, KeyError, TypeError):
        return None  # written by an older version: read it afresh


def invalidate(*, redis_cache: BestEffortRedis, user_id: uuid.UUID) -> None:
    """Drop the cached copy after a write. Called after the commit, so a reader cannot
    re-cache the old row from a transaction that had not committed yet. When Redis does not
    answer, the entry expires by its TTL."""
    redis_cache.run(
        "users.cache_invalidate", lambda client: client.delete(f"{CACHE_PREFIX}{user_id}")
    )


# -- accounts --------------------------------------------------------------------------------


def register_user(
    *,
    sessions: Sessions,
    passwords: Passwords,
    email: str,
    password: str,
    full_name: str,
    roles: Sequence[str] = (CUSTOMER,),
) -> User:
    # Hashed before the transaction: no connection is held through argon2's work.
    user = User(
        email=normalise_email(email),
        full_name=full_name.strip(),
        password_hash=passwords.hash(password),
        roles=list(roles),
    )
    try:
        with sessions.begin() as session:
            session.add(user)
    except IntegrityError as error:
        if _is_email_taken(error):
            raise email_taken() from error
        raise
    return user


def find_by_email(*, session: Session, email: str) -> User | None:
    return session.execute(
        select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()


def authenticate(
    *, session: Session, throttle: LoginThrottle, email: str, password: str, client_address: str
) -> User | None:
    """The account these credentials sign in to, or ``None`` when they do not. Whoever signs
    people in (the password grant; a console later) calls this, inside its own unit of work:
    the check goes through the login throttle, and a successful one of an active account
    re-hashes a password stored with older argon2 parameters. Whether a disabled account may
    go on is the caller's to say (``is_active``)."""
    user = find_by_email(session=session, email=email)
    matches = throttle.check_password(
        account=normalise_email(email),
        address=client_address,
        stored_hash=user.password_hash if user else None,
        password=password,
    )
    if user is None or not matches:
        return None
    if user.is_active and throttle.passwords.needs_rehash(user.password_hash):
        user.password_hash = throttle.passwords.hash(password)
        PASSWORD_REHASHES.inc()
    return user


def update_profile(
    *,
    sessions: Sessions,
    redis_cache: BestEffortRedis,
    throttle: LoginThrottle,
    user_id: uuid.UUID,
    client_address: str,
    full_name: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> User:
    """The owner's own changes. A new password needs the current one, checked under the
    login throttle (this must not become a way round it), and ends every session (refresh
    token) the user had."""
    with sessions.begin() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise no_such_user()
        if password is not None:
            matches = current_password is not None and throttle.check_password(
                account=user.email,
                address=client_address,
                stored_hash=user.password_hash,
                password=current_password,
            )
            if not matches:
                raise _field_error("current_password", "Does not match.")
            problem = policy_violation(password, email=user.email)
            if problem:
                raise _field_error("password", f"Password {problem}.")
            user.password_hash = throttle.passwords.hash(password)
            revoke_all_refresh_tokens(session=session, user_id=user.id)
        if full_name is not None:
            user.full_name = full_name.strip()
    invalidate(redis_cache=redis_cache, user_id=user.id)
    return user


def revoke_all_refresh_tokens(*, session: Session, user_id: uuid.UUID) -> int:
    """Revoke every refresh token of the user; returns how many token families (sign-ins)
    that ended."""
    families = session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(RefreshToken.family_id)
    ).scalars()
    return len(set(families))


# -- administration --------------------------------------------------------------------------


def _encode_cursor(user: User) -> str:
    raw = json.dumps([user.created_at.isoformat(), str(user.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    invalid = ProblemError(
        INVALID_CURSOR,
        "The cursor was not issued by this list.",
        errors=[{"field": "cursor", "location": "query", "message": "Not a valid cursor."}],
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, user_id = json.loads(raw)
        position = datetime.fromisoformat(created_at), uuid.UUID(user_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise invalid from error
    if position[0].tzinfo is None:
        raise invalid
    return position


def list_users(
    *,
    sessions: Sessions,
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
    with sessions.begin() as session:
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
            raise last_admin()


def locked_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise no_such_user()
    return user


def user_target(user: User) -> audit.Target:
    return audit.Target(type="user", id=str(user.id), label=user.email)


def update_user(
    *,
    sessions: Sessions,
    redis_cache: BestEffortRedis,
    actor: audit.Actor,
    user_id: uuid.UUID,
    email: str | None = None,
    full_name: str | None = None,
    is_active: bool | None = None,
) -> User:
    """An admin's change; each real change is recorded in the audit trail with the values
    before and after."""
    try:
        with sessions.begin() as session:
            user = locked_user(session, user_id)
            target = user_target(user)
            if is_active is False:
                _guard_last_admin(session, user, keeps_admin=False)
            changes: dict[str, dict[str, str]] = {}
            if email is not None and normalise_email(email) != user.email:
                changes["email"] = {"before": user.email, "after": normalise_email(email)}
                user.email = normalise_email(email)
            if full_name is not None and full_name.strip() != user.full_name:
                changes["full_name"] = {"before": user.full_name, "after": full_name.strip()}
                user.full_name = full_name.strip()
            if changes:
                # Flushed now: a taken email fails before anything is recorded.
                session.flush()
                audit.record(session, actor, "user.updated", target, changes)
            if is_active is not None and is_active != user.is_active:
                families = 0
                if not is_active:
                    families = revoke_all_refresh_tokens(session=session, user_id=user.id)
                user.is_active = is_active
                action = "user.enabled" if is_active else "user.disabled"
                details = {} if is_active else {"refresh_token_families_revoked": families}
                audit.record(session, actor, action, user_target(user), details)
    except IntegrityError as error:
        if _is_email_taken(error):
            raise email_taken() from error
        raise
    invalidate(redis_cache=redis_cache, user_id=user.id)
    return user


def set_roles(
    *,
    sessions: Sessions,
    redis_cache: BestEffortRedis,
    actor: audit.Actor,
    user_id: uuid.UUID,
    roles: Sequence[str],
) -> User:
    with sessions.begin() as session:
        user = locked_user(session, user_id)
        _guard_last_admin(session, user, keeps_admin=ADMIN in roles)
        before, after = sorted(user.roles), sorted(set(roles))
        if before != after:
            user.roles = after
            audit.record(
                session,
                actor,
                "user.roles_set",
                user_target(user),
                {"before": before, "after": after},
            )
    invalidate(redis_cache=redis_cache, user_id=user.id)
    return user


def delete_user(
    *, sessions: Sessions, redis_cache: BestEffortRedis, actor: audit.Actor, user_id: uuid.UUID
) -> None:
    """Deletes the user and, by cascade, their refresh tokens and console sessions."""
    with sessions.begin() as session:
        user = locked_user(session, user_id)
        _guard_last_admin(session, user, keeps_admin=False)
        audit.record(
            session, actor, "user.deleted", user_target(user), {"roles": sorted(user.roles)}
        )
        session.delete(user)
    invalidate(redis_cache=redis_cache, user_id=user_id)


def ensure_admin(
    *,
    sessions: Sessions,
    passwords: Passwords,
    email: str,
    password: str,
    full_name: str = "Administrator",
) -> tuple[User, bool]:
    """Create ``email`` as an active admin, or promote the existing account (its password
    is left alone). Idempotent; returns the user and whether it was created."""
    with sessions.begin() as session:
        user = find_by_email(session=session, email=email)
        if user is not None:
            if ADMIN not in user.roles or not user.is_active:
                user.roles = sorted({*user.roles, ADMIN})
                user.is_active = True
            return user, False
    try:
        created = register_user(
            sessions=sessions,
            passwords=passwords,
            email=email,
            password=password,
            full_name=full_name,
            roles=(ADMIN, CUSTOMER),
        )
    except ProblemError as error:
        if error.problem is not EMAIL_TAKEN:
            raise
        # Another replica bootstrapped at the same moment: promote what it made.
        return ensure_admin(sessions=sessions, passwords=passwords, email=email, password=password)
    return created, True
