"""Access token verification: a JWT from users (RFC 9068 profile) becomes an ``Identity``.

Checked, in order: the header (an allowed asymmetric ``alg``, ``typ`` ``at+jwt``, a ``kid``
the JWKS holds and whose key is of that algorithm), the signature, then ``iss``, ``aud``,
``exp``, ``nbf`` and ``iat`` with a small leeway, and the shape of the identity claims.
Anything else is an ``InvalidTokenError`` carrying a short reason for the client and the metrics.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from shopstack_common.identity import Identity
from shopstack_gateway.keys import KeySet

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "client_id"]
# What may travel in an identity header: no separators, no control characters.
_ROLE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")  # RFC 6749 scope-token
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


class InvalidTokenError(Exception):
    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason  # a metric label: short and from a fixed set
        self.description = description


@dataclass(frozen=True)
class _Verified:
    identity: Identity
    kid: str
    not_before: float
    expires: float


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        algorithms: frozenset[str],
        leeway_seconds: float,
        cache_size: int = 0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway = leeway_seconds
        self.cache_size = cache_size
        self._jwt = jwt.PyJWT(
            options={"require": REQUIRED_CLAIMS, "verify_signature": True, "strict_aud": False}
        )
        # Verified tokens by their exact text, oldest first. A changed byte is a different key,
        # so a hit can only be a token that passed every check; time and key checks still run.
        self._verified: dict[str, _Verified] = {}

    async def verify(self, token: str) -> Identity:
        cached = self._verified.get(token)
        if cached is not None:
            now = time.time()
            if cached.kid in self.keys and (
                cached.not_before - self.leeway <= now < cached.expires + self.leeway
            ):
                return cached.identity
            del self._verified[token]
        verified = await self._verify(token)
        if self.cache_size:
            if len(self._verified) >= self.cache_size:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = verified
        return verified.identity

    async def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed", "The access token is malformed.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidTokenError("algorithm", "The token's signing algorithm is not accepted.")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("type", "The token is not an access token (typ at+jwt).")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("kid", "The token names no signing key (kid).")
        key = await self.keys.get(kid)  # may raise KeysUnavailableError
        if key is None:
            raise InvalidTokenError("kid", "The token's signing key is not known.")
        try:
            claims = self._jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("expired", "The access token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("not_yet_valid", "The access token is not valid yet.") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("issuer", "The token was issued by someone else.") from None
        except jwt.InvalidAudienceError:
            raise InvalidTokenError(
                "audience", "The token is meant for another audience."
            ) from None
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("signature", "The token's signature is not valid.") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidTokenError(
                "claims", f"The token lacks the {error.claim!r} claim."
            ) from None
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed", "The access token is malformed.") from None
        return _Verified(
            identity=identity_from_claims(claims),
            kid=kid,
            not_before=float(claims["nbf"]),
            expires=float(claims["exp"]),
        )


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """The contract's claims as an Identity: a user token's ``sub`` is the user's UUID; a
    client-credentials token's ``sub`` is its ``client_id`` and it carries no user."""
    sub, client_id, jti = claims["sub"], claims["client_id"], claims["jti"]
    roles = claims.get("roles", [])
    scope = claims.get("scope", "")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise _bad_claim("client_id")
    if not isinstance(jti, str) or not _CLIENT_ID.match(jti):
        raise _bad_claim("jti")
    if not isinstance(roles, list) or not all(isinstance(r, str) and _ROLE.match(r) for r in roles):
        raise _bad_claim("roles")
    if not isinstance(scope, str) or not all(_SCOPE.match(s) for s in scope.split()):
        raise _bad_claim("scope")
    if not isinstance(sub, str):
        raise _bad_claim("sub")
    user_id: uuid.UUID | None = None
    if sub != client_id:
        try:
            user_id = uuid.UUID(sub)
        except ValueError:
            raise _bad_claim("sub") from None
    return Identity(
        user_id=user_id,
        client_id=client_id,
        roles=frozenset(roles),
        scopes=frozenset(scope.split()),
        token_id=jti,
    )


def _bad_claim(name: str) -> InvalidTokenError:
    return InvalidTokenError("claims", f"The token's {name!r} claim is not valid.")
