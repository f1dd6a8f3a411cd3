"""What the admin console does beyond the accounts and tokens services: its sign-in sessions,
the dashboard's figures, a user's sign-ins, "sign out everywhere" and the signing keys.

Each public function is one unit of work (``with sessions.begin() as session:``), as in the
other service modules; nothing here knows about Flask.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from shopstack_users.accounts import service as accounts
from shopstack_users.accounts.models import ADMIN, ROLES, User
from shopstack_users.audit import service as audit
from shopstack_users.console.models import ConsoleSession
from shopstack_users.keys import KeyRing
from shopstack_users.throttle import LoginThrottle
from shopstack_users.tokens.models import RefreshToken

Sessions = sessionmaker[Session]

logger = logging.getLogger(__name__)

# last_seen_at is written at most this often per session: a page view is not a write each.
SEEN_RESOLUTION = timedelta(seconds=30)


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class SignedInAdmin:
    """The admin behind a console session. It has what Flask-Login asks of a user;
    ``get_id`` is the session id, so the browser never holds a user id."""

    session_id: str
    user_id: uuid.UUID
    email: str
    full_name: str
    signed_in_at: datetime

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.session_id

    def actor(self, address: str | None) -> audit.Actor:
        return audit.Actor(label=self.email, address=address, user_id=self.user_id)


class SignInRefused(Exception):  # noqa: N818 - a refusal, not a fault
    """The credentials do not sign in to the console (wrong, disabled, or not an admin);
    which of these it was is not said."""


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _may_use_console(user: User) -> bool:
    return user.is_active and ADMIN in user.roles


def _expired(session: Session, timeouts: Timeouts) -> None:
    now = datetime.now(UTC)
    session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.last_seen_at < now - timeouts.idle)
            | (ConsoleSession.created_at < now - timeouts.absolute)
        )
    )


def sign_in(
    *,
    sessions: Sessions,
    throttle: LoginThrottle,
    timeouts: Timeouts,
    email: str,
    password: str,
    address: str,
    user_agent: str | None,
) -> SignedInAdmin:
    """A new console session for an active admin. The password is checked the way every
    sign-in checks it (``accounts.authenticate``: the login throttle, whose 429 problem
    propagates). Always a new session id: one from before the sign-in is never reused."""
    with sessions.begin() as session:
        user = accounts.authenticate(
            session=session,
            throttle=throttle,
            email=email,
            password=password,
            client_address=address,
        )
        if user is None or not _may_use_console(user):
            logger.warning(
                "console sign-in refused",
                extra={"reason": "credentials" if user is None else "not an active admin"},
            )
            raise SignInRefused
        _expired(session, timeouts)
        session_id = secrets.token_urlsafe(32)
        row = ConsoleSession(
            id_hash=_hash(session_id),
            user_id=user.id,
            address=address[:64],
            user_agent=(user_agent or "")[:256] or None,
        )
        session.add(row)
        session.flush()
        admin = SignedInAdmin(
            session_id=session_id,
            user_id=user.id,
            email=user.email,
            full_name=user.full_name,
            signed_in_at=row.created_at,
        )
        audit.record(session, admin.actor(address), "console.signed_in", accounts.user_target(user))
    return admin


def load_session(
    *, sessions: Sessions, timeouts: Timeouts, session_id: str
) -> SignedInAdmin | None:
    """The admin of a live session, or ``None`` (unknown, timed out, or its user is no
    longer an active admin: then the session is ended here)."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        row = session.get(ConsoleSession, _hash(session_id))
        if row is None:
            return None
        user = session.get(User, row.user_id)
        timed_out = now - row.last_seen_at > timeouts.idle or now - row.created_at > (
            timeouts.absolute
        )
        if timed_out or user is None or not _may_use_console(user):
            session.delete(row)
            return None
        if now - row.last_seen_at > SEEN_RESOLUTION:
            row.last_seen_at = now
        return SignedInAdmin(
            session_id=session_id,
            user_id=user.id,
            email=user.email,
            full_name=user.full_name,
            signed_in_at=row.created_at,
        )


def sign_out(*, sessions: Sessions, admin: SignedInAdmin, address: str | None) -> None:
    with sessions.begin() as session:
        session.execute(
            delete(ConsoleSession).where(ConsoleSession.id_hash == _hash(admin.session_id))
        )
        target = audit.Target(type="user", id=str(admin.user_id), label=admin.email)
        audit.record(session, admin.actor(address), "console.signed_out", target)


# -- the dashboard ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    # (role, active?) -> accounts; an account with two roles counts under each.
    by_role_and_status: dict[tuple[str, bool], int]
    total: int
    disabled: int
    recent_sign_ups: Sequence[User]

    def count(self, role: str, *, active: bool) -> int:
        return self.by_role_and_status.get((role, active), 0)


def dashboard(*, sessions: Sessions, recent: int = 10) -> Dashboard:
    role = func.unnest(User.roles).label("role")
    with sessions.begin() as session:
        rows = session.execute(
            select(role, User.is_active, func.count()).group_by(role, User.is_active)
        ).all()
        total, disabled = session.execute(
            select(func.count(), func.count().filter(User.is_active.is_(False)))
        ).one()
        newest = list(
            session.execute(
                select(User).order_by(User.created_at.desc(), User.id.desc()).limit(recent)
            ).scalars()
        )
    counts = {(str(r), bool(active)): int(n) for r, active, n in rows}
    for known in ROLES:
        for active in (True, False):
            counts.setdefault((known, active), 0)
    return Dashboard(
        by_role_and_status=counts, total=total, disabled=disabled, recent_sign_ups=newest
    )


# -- one user ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSignIns:
    """How many sign-ins a user has going: refresh-token families with a live token, and
    console sessions."""

    refresh_token_families: int
    console_sessions: int


def user_with_sign_ins(*, sessions: Sessions, user_id: uuid.UUID) -> tuple[User, UserSignIns]:
    now = datetime.now(UTC)
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise accounts.no_such_user()
        families = session.execute(
            select(func.count(func.distinct(RefreshToken.family_id))).where(
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.rotated_at.is_(None),
                RefreshToken.expires_at > now,
            )
        ).scalar_one()
        console_sessions = session.execute(
            select(func.count()).where(ConsoleSession.user_id == user_id)
        ).scalar_one()
    return user, UserSignIns(refresh_token_families=families, console_sessions=console_sessions)


def sign_out_everywhere(
    *, sessions: Sessions, actor: audit.Actor, user_id: uuid.UUID
) -> UserSignIns:
    """Revoke every refresh-token family of the user (each sign-in on every device) and end
    their console sessions; returns how many of each ended. Access tokens already issued stay
    valid until they expire (``ACCESS_TOKEN_TTL_SECONDS``): they are checked without a call
    here."""
    with sessions.begin() as session:
        user = accounts.locked_user(session, user_id)
        families = accounts.revoke_all_refresh_tokens(session=session, user_id=user.id)
        ended = session.execute(
            delete(ConsoleSession)
            .where(ConsoleSession.user_id == user.id)
            .returning(ConsoleSession.id_hash)
        ).all()
        ended_count = UserSignIns(refresh_token_families=families, console_sessions=len(ended))
        audit.record(
            session,
            actor,
            "user.signed_out_everywhere",
            accounts.user_target(user),
            {"refresh_token_families_revoked": families, "console_sessions_ended": len(ended)},
        )
    return ended_count


# -- signing keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    kid: str
    created_at: datetime | None
    origin: str
    thumbprint: str
    signs: bool
    published: bool


def signing_keys(keys: KeyRing) -> list[KeyRow]:
    """Every key the service holds, newest first: the one that signs new tokens, and whether
    the JWKS (what verifiers fetch) publishes it."""
    ring = keys.keys
    published = {jwk["kid"] for jwk in keys.jwks()["keys"]}
    signing = ring[-1].kid if ring else None
    return [
        KeyRow(
            kid=key.kid,
            created_at=key.created_at,
            origin=key.origin,
            thumbprint=key.thumbprint(),
            signs=key.kid == signing,
            published=key.kid in published,
        )
        for key in reversed(ring)
    ]
