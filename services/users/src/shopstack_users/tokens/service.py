"""The OAuth2 grants (RFC 6749), refresh token rotation and revocation (RFC 7009), access
tokens as JWTs (RFC 9068), and the service clients.

Nothing here knows about HTTP: a refused grant is an ``OAuthError`` (RFC 6749 §5.2's error
code, description, status and headers), which the token router renders; anything else the
platform would refuse is a ``ProblemError``. Each grant is one unit of work
(``with sessions.begin() as session:``); argon2 work on a client secret runs outside it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.problems import (
    CONFLICT,
    NO_SIGNING_KEY,
    NOT_FOUND,
    TOO_MANY_FAILED_LOGINS,
    ProblemError,
    validation_error,
)
from shopstack_users.accounts.models import User
from shopstack_users.accounts.service import authenticate
from shopstack_users.audit import service as audit
from shopstack_users.config import UsersSettings
from shopstack_users.keys import ALGORITHM, KeyRing
from shopstack_users.metrics import LOGINS, REFRESH_TOKEN_REUSE, TOKENS_ISSUED
from shopstack_users.passwords import Passwords
from shopstack_users.throttle import LoginThrottle
from shopstack_users.tokens.models import RefreshToken, ServiceClient

logger = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068's media type, not a secret
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = r"[\x21\x23-\x5b\x5d-\x7e]+"  # noqa: S105 - a pattern, not a secret
_SCOPE_TOKEN = re.compile(SCOPE_TOKEN)
CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="shopstack"'}

Sessions = sessionmaker[Session]


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` is the code, ``status`` 400 or 401 (with
    ``headers``: the ``WWW-Authenticate`` challenge of an ``invalid_client``)."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})


def invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    return OAuthError("invalid_client", description, status=401, headers=BASIC_CHALLENGE)


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
    """Everything a grant needs besides the database."""

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
    if not raw or not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens):
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
        raise ProblemError(NO_SIGNING_KEY, "The service has no token signing key configured.")
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
) -> TokenResponse:
    """Store a new refresh token (the caller's unit of work commits it) and sign the access
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
    sessions: Sessions,
    issuer: Issuer,
    username: str,
    password: str,
    scope: str | None,
    client_address: str,
) -> TokenResponse:
    granted = grant_scope(parse_scope(scope), issuer.settings.user_scopes)
    with sessions.begin() as session:
        try:
            user = authenticate(
                session=session,
                throttle=issuer.throttle,
                email=username,
                password=password,
                client_address=client_address,
            )
        except ProblemError as error:
            if error.problem is TOO_MANY_FAILED_LOGINS:
                LOGINS.labels("throttled").inc()
            raise
        if user is None:
            LOGINS.labels("bad_password").inc()
            raise OAuthError("invalid_grant", "The email or password is wrong.")
        if not user.is_active:
            LOGINS.labels("disabled").inc()
            raise OAuthError("invalid_grant", "The account is disabled.")
        issued = _user_tokens(
            session, issuer, user, scope=granted, family_id=uuid.uuid4(), refresh_scope=granted
        )
    LOGINS.labels("ok").inc()
    TOKENS_ISSUED.labels("password").inc()
    return issued


def revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def refresh_grant(
    *, sessions: Sessions, issuer: Issuer, refresh_token: str, scope: str | None
) -> TokenResponse:
    requested = parse_scope(scope)
    invalid = OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")
    with sessions.begin() as session:
        # FOR UPDATE: two requests with the same token are served one after the other, so
        # the second sees the first's rotation and counts as a re-use.
        stored = session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
            .with_for_update()
        ).scalar_one_or_none()
        if stored is None or stored.revoked_at is not None:
            raise invalid
        reused = stored.rotated_at is not None
        if reused:
            # Someone presents a token that was already exchanged: either the client or a
            # thief holds a copy. Revoke the whole family (committed below, before the
            # refusal); the rightful owner signs in again.
            revoke_family(session, stored.family_id)
        else:
            user = session.get(User, stored.user_id)
            if stored.expires_at <= datetime.now(UTC) or user is None or not user.is_active:
                raise invalid
            # RFC 6749 §6: a refresh may narrow the scope, never widen it.
            granted = grant_scope(requested, stored.scope.split())
            stored.rotated_at = datetime.now(UTC)
            issued = _user_tokens(
                session,
                issuer,
                user,
                scope=granted,
                family_id=stored.family_id,
                refresh_scope=stored.scope,
            )
    if reused:
        REFRESH_TOKEN_REUSE.inc()
        logger.warning(
            "refresh token re-used; token family revoked",
            extra={"family_id": str(stored.family_id), "user_id": str(stored.user_id)},
        )
        raise invalid
    TOKENS_ISSUED.labels("refresh_token").inc()
    return issued


def client_credentials_grant(
    *, sessions: Sessions, issuer: Issuer, client_id: str, client_secret: str, scope: str | None
) -> TokenResponse:
    requested = parse_scope(scope)
    client = None
    if CLIENT_ID_PATTERN.fullmatch(client_id):
        with sessions.begin() as session:
            client = session.get(ServiceClient, client_id)
    # Client secrets are 256 random bits: guessing them is hopeless, so unlike passwords
    # they are not throttled. An unknown client costs the same argon2 work as a known one.
    matches = issuer.passwords.verify(client.secret_hash if client else None, client_secret)
    if client is None or not matches:
        raise invalid_client()
    granted = grant_scope(requested, client.scopes)
    token = access_token(issuer, subject=client_id, client_id=client_id, roles=(), scope=granted)
    TOKENS_ISSUED.labels("client_credentials").inc()
    return TokenResponse(
        access_token=token, expires_in=issuer.settings.access_token_ttl_seconds, scope=granted
    )


def revoke(*, sessions: Sessions, token: str) -> None:
    """RFC 7009: revoke the refresh token's whole family (the grant it belongs to). Unknown
    tokens and access tokens (self-contained JWTs that expire by themselves) are accepted
    without effect, as §2.2 asks."""
    with sessions.begin() as session:
        stored = session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
        ).scalar_one_or_none()
        if stored is not None:
            revoke_family(session, stored.family_id)


# -- service clients -------------------------------------------------------------------------
# Administration of service clients (the console and the CLI) is not token rotation or reuse
# detection: its tests are the console's and the CLI's, which the mutation run does not use,
# so it is left out of it.
# pragma: no mutate start


def _client_target(client_id: str) -> audit.Target:
    return audit.Target(type="client", id=client_id, label=client_id)


def _no_such_client(client_id: str) -> ProblemError:
    return ProblemError(NOT_FOUND, f"No client {client_id!r}.")


def create_client(
    *,
    sessions: Sessions,
    passwords: Passwords,
    actor: audit.Actor,
    client_id: str,
    scopes: Iterable[str],
    description: str = "",
) -> tuple[ServiceClient, str]:
    """Register a client; returns it with its secret, which is shown this once only."""
    if not CLIENT_ID_PATTERN.fullmatch(client_id):
        message = f"Must match {CLIENT_ID_PATTERN.pattern}."
        raise validation_error([{"field": "client_id", "message": message}])
    scope_list = sorted(set(scopes))
    bad = [s for s in scope_list if not _SCOPE_TOKEN.fullmatch(s)]
    if bad:
        raise validation_error([{"field": "scope", "message": f"Not scope tokens: {bad}."}])
    secret = secrets.token_urlsafe(32)
    client = ServiceClient(
        client_id=client_id,
        description=description,
        secret_hash=passwords.hash(secret),
        scopes=scope_list,
    )
    try:
        with sessions.begin() as session:
            session.add(client)
            # Flushed here, so a taken id fails before the event is recorded.
            session.flush()
            audit.record(
                session,
                actor,
                "client.created",
                _client_target(client_id),
                {"scopes": scope_list, "description": description},
            )
    except IntegrityError as error:
        raise ProblemError(
            CONFLICT,
            f"Client {client_id!r} already exists.",
            errors=[{"field": "client_id", "location": "body", "message": "already exists"}],
        ) from error
    return client, secret


def rotate_client_secret(
    *, sessions: Sessions, passwords: Passwords, actor: audit.Actor, client_id: str
) -> str:
    """Give the client a new secret (returned, shown once); the old one stops working at
    once. Access tokens issued before stay valid until they expire."""
    secret = secrets.token_urlsafe(32)
    secret_hash = passwords.hash(secret)
    with sessions.begin() as session:
        client = session.get(ServiceClient, client_id, with_for_update=True)
        if client is None:
            raise _no_such_client(client_id)
        client.secret_hash = secret_hash
        audit.record(session, actor, "client.secret_rotated", _client_target(client_id))
    return secret


def ensure_client(
    *, sessions: Sessions, passwords: Passwords, client_id: str, secret: str, scopes: Iterable[str]
) -> bool:
    """Make sure ``client_id`` exists with this secret and these scopes (a deployment's own
    client, configured rather than created by someone); returns whether anything changed.
    Idempotent: a secret that still verifies is not hashed again."""
    wanted = sorted(set(scopes))
    with sessions.begin() as session:
        client = session.get(ServiceClient, client_id)
        stored_hash = client.secret_hash if client else None
    # argon2 runs outside the transactions, so no connection is held through it.
    if client is not None and client.scopes == wanted and passwords.verify(stored_hash, secret):
        return False
    secret_hash = passwords.hash(secret)
    with sessions.begin() as session:
        client = session.get(ServiceClient, client_id, with_for_update=True)
        if client is None:
            session.add(ServiceClient(client_id=client_id, secret_hash=secret_hash, scopes=wanted))
        else:
            client.secret_hash = secret_hash
            client.scopes = wanted
    return True


def list_clients(*, sessions: Sessions) -> list[ServiceClient]:
    with sessions.begin() as session:
        query = select(ServiceClient).order_by(ServiceClient.client_id)
        return list(session.execute(query).scalars())


def delete_client(*, sessions: Sessions, actor: audit.Actor, client_id: str) -> None:
    with sessions.begin() as session:
        client = session.get(ServiceClient, client_id)
        if client is None:
            raise _no_such_client(client_id)
        session.delete(client)
        audit.record(
            session, actor, "client.deleted", _client_target(client_id), {"scopes": client.scopes}
        )


# pragma: no mutate end
