"""The OAuth2 grants (RFC 6749), refresh token rotation and revocation (RFC 7009), and
access tokens as JWTs (RFC 9068). Views call these; they know nothing about HTTP."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopstack_users.accounts.service import find_by_email, normalise_email
from shopstack_users.config import UsersSettings
from shopstack_users.keys import ALGORITHM, KeyRing
from shopstack_users.metrics import (
    LOGINS_THROTTLED,
    PASSWORD_REHASHES,
    REFRESH_TOKEN_REUSE,
    TOKENS_ISSUED,
)
from shopstack_users.models import RefreshToken, ServiceClient, User
from shopstack_users.passwords import Passwords
from shopstack_users.throttle import LoginThrottle

logger = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068's media type, not a secret
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` is the code, ``status`` 400 or 401."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


class LoginThrottledError(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class NoSigningKeyError(RuntimeError):
    pass


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the token type, not a secret

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


@dataclass(frozen=True)
class Issuer:
    """Everything a grant needs besides the database session."""

    settings: UsersSettings
    keys: KeyRing
    passwords: Passwords
    throttle: LoginThrottle = field(compare=False)


# -- scopes ----------------------------------------------------------------------------------


def parse_scope(raw: str | None) -> list[str] | None:
    """``None`` when absent; the list of scope tokens otherwise (invalid_scope if malformed)."""
    if raw is None:
        return None
    tokens = raw.split(" ")
    if not raw or not all(_SCOPE_TOKEN.match(token) for token in tokens):
        raise OAuthError("invalid_scope", "scope must be space-separated scope tokens")
    return tokens


def grant_scope(requested: list[str] | None, allowed: Iterable[str]) -> str:
    allowed_set = set(allowed)
    if requested is None:
        return " ".join(sorted(allowed_set))
    unknown = sorted(set(requested) - allowed_set)
    if unknown:
        raise OAuthError("invalid_scope", f"scope not allowed: {' '.join(unknown)}")
    return " ".join(sorted(set(requested)))


# -- access tokens ---------------------------------------------------------------------------


def access_token(
    issuer: Issuer, *, subject: str, client_id: str, roles: Iterable[str], scope: str
) -> str:
    key = issuer.keys.signing_key
    if key is None:
        raise NoSigningKeyError("no signing key is configured")
    now = int(time.time())
    claims = {
        "iss": issuer.settings.jwt_issuer,
        "aud": issuer.settings.jwt_audience,
        "sub": subject,
        "client_id": client_id,
        "roles": sorted(roles),
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + issuer.settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=ALGORITHM,
        headers={"typ": ACCESS_TOKEN_TYPE, "kid": key.kid},
    )


def _user_tokens(
    session: Session,
    issuer: Issuer,
    user: User,
    *,
    scope: str,
    family_id: uuid.UUID,
    refresh_scope: str,
    grant_type: str,
) -> TokenResponse:
    """Store a new refresh token (the caller's transaction commits it) and sign the access
    token. The access token is signed first: with no key nothing is written."""
    client_id = issuer.settings.public_client_id
    token = access_token(
        issuer, subject=str(user.id), client_id=client_id, roles=user.roles, scope=scope
    )
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=hash_refresh_token(refresh),
            family_id=family_id,
            user_id=user.id,
            client_id=client_id,
            scope=refresh_scope,
            expires_at=datetime.now(UTC)
            + timedelta(seconds=issuer.settings.refresh_token_ttl_seconds),
        )
    )
    session.commit()
    TOKENS_ISSUED.labels(grant_type).inc()
    return TokenResponse(
        access_token=token,
        expires_in=issuer.settings.access_token_ttl_seconds,
        scope=scope,
        refresh_token=refresh,
    )


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- grants ----------------------------------------------------------------------------------


def password_grant(
    *,
    session: Session,
    issuer: Issuer,
    username: str,
    password: str,
    scope: str | None,
    client_address: str,
) -> TokenResponse:
    granted = grant_scope(parse_scope(scope), issuer.settings.user_scopes)
    email = normalise_email(username)
    retry_after = issuer.throttle.retry_after(email, client_address)
    if retry_after is not None:
        LOGINS_THROTTLED.inc()
        raise LoginThrottledError(retry_after)
    user = find_by_email(session=session, email=email)
    if not issuer.passwords.verify(user.password_hash if user else None, password):
        issuer.throttle.failed(email, client_address)
        raise OAuthError("invalid_grant", "The email or password is wrong.")
    assert user is not None
    if not user.is_active:
        raise OAuthError("invalid_grant", "The account is disabled.")
    issuer.throttle.succeeded(email, client_address)
    if issuer.passwords.needs_rehash(user.password_hash):
        user.password_hash = issuer.passwords.hash(password)
        PASSWORD_REHASHES.inc()
    return _user_tokens(
        session,
        issuer,
        user,
        scope=granted,
        family_id=uuid.uuid4(),
        refresh_scope=granted,
        grant_type="password",
    )


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def refresh_grant(
    *, session: Session, issuer: Issuer, refresh_token: str, scope: str | None
) -> TokenResponse:
    requested = parse_scope(scope)
    # FOR UPDATE: two requests with the same token are served one after the other, so the
    # second sees the first's rotation and counts as a re-use.
    stored = session.execute(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        .with_for_update()
    ).scalar_one_or_none()
    invalid = OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")
    if stored is None or stored.revoked_at is not None:
        session.rollback()
        raise invalid
    if stored.rotated_at is not None:
        # Someone presents a token that was already exchanged: either the client or a thief
        # holds a copy. Revoke the whole family; the rightful owner signs in again.
        revoke_family(session, stored.family_id)
        session.commit()
        REFRESH_TOKEN_REUSE.inc()
        logger.warning(
            "refresh token re-used; token family revoked",
            extra={"family_id": str(stored.family_id), "user_id": str(stored.user_id)},
        )
        raise invalid
    if stored.expires_at <= datetime.now(UTC):
        session.rollback()
        raise invalid
    user = session.get(User, stored.user_id)
    if user is None or not user.is_active:
        session.rollback()
        raise invalid
    # RFC 6749 §6: a refresh may narrow the scope, never widen it.
    granted = grant_scope(requested, stored.scope.split())
    stored.rotated_at = datetime.now(UTC)
    return _user_tokens(
        session,
        issuer,
        user,
        scope=granted,
        family_id=stored.family_id,
        refresh_scope=stored.scope,
        grant_type="refresh_token",
    )


def client_credentials_grant(
    *, session: Session, issuer: Issuer, client_id: str, client_secret: str, scope: str | None
) -> TokenResponse:
    requested = parse_scope(scope)
    client = session.get(ServiceClient, client_id) if CLIENT_ID_PATTERN.match(client_id) else None
    if not issuer.passwords.verify(client.secret_hash if client else None, client_secret):
        raise OAuthError(
            "invalid_client",
            "Client authentication failed.",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="shopstack"'},
        )
    assert client is not None
    granted = grant_scope(requested, client.scopes)
    token = access_token(issuer, subject=client_id, client_id=client_id, roles=(), scope=granted)
    TOKENS_ISSUED.labels("client_credentials").inc()
    return TokenResponse(
        access_token=token, expires_in=issuer.settings.access_token_ttl_seconds, scope=granted
    )


def revoke(*, session: Session, token: str) -> None:
    """RFC 7009: revoke the refresh token's whole family (the grant it belongs to). Unknown
    tokens and access tokens (self-contained JWTs that expire by themselves) are accepted
    without effect, as §2.2 asks."""
    stored = session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
    ).scalar_one_or_none()
    if stored is not None:
        revoke_family(session, stored.family_id)
        session.commit()


# -- service clients -------------------------------------------------------------------------


class ClientExistsError(Exception):
    pass


def create_client(
    *,
    session: Session,
    passwords: Passwords,
    client_id: str,
    scopes: Iterable[str],
    description: str = "",
) -> tuple[ServiceClient, str]:
    """Register a client; returns it with its secret, which is shown this once only."""
    if not CLIENT_ID_PATTERN.match(client_id):
        raise ValueError(f"client id must match {CLIENT_ID_PATTERN.pattern}")
    scope_list = sorted(set(scopes))
    bad = [s for s in scope_list if not _SCOPE_TOKEN.match(s)]
    if bad:
        raise ValueError(f"not valid scope tokens: {bad}")
    secret = secrets.token_urlsafe(32)
    client = ServiceClient(
        client_id=client_id,
        description=description,
        secret_hash=passwords.hash(secret),
        scopes=scope_list,
    )
    session.add(client)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise ClientExistsError(client_id) from error
    return client, secret


def list_clients(*, session: Session) -> list[ServiceClient]:
    return list(session.execute(select(ServiceClient).order_by(ServiceClient.client_id)).scalars())


def delete_client(*, session: Session, client_id: str) -> bool:
    client = session.get(ServiceClient, client_id)
    if client is None:
        return False
    session.delete(client)
    session.commit()
    return True
