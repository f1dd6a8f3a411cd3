"""Access tokens signed the way users signs them, for tests and benchmarks of the gateway: a
fresh Ed25519 key, the JWKS that publishes it, and tokens with the contract's claims (RFC 9068
profile: ``typ`` ``at+jwt``, ``kid``, ``iss``, ``aud``, ``sub``, ``client_id``, ``roles``,
``scope``, ``iat``, ``nbf``, ``exp``, ``jti``)."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ISSUER = "shopstack"
AUDIENCE = "shopstack-api"


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


@dataclass
class TokenIssuer:
    """Signs access tokens with one key. ``claims(**overrides)`` gives the contract's claims
    for a new customer; an override of ``None`` leaves that claim out."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    lifetime_seconds: int = 900

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid)]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "client_id": "web",
            "roles": ["customer"],
            "scope": "orders:read orders:write",
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(self, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        return jwt.encode(
            self.claims(**claims),
            self.key,
            algorithm="EdDSA",
            headers={"kid": self.kid, "typ": "at+jwt", **(headers or {})},
        )

    def bearer(self, headers: dict[str, Any] | None = None, **claims: Any) -> dict[str, str]:
        """``Authorization`` with a new token, as request headers."""
        return {"Authorization": f"Bearer {self.mint(headers, **claims)}"}
