"""The access-token signing keys: Ed25519, one per ``kid``, from configuration.

Keys come from ``JWT_SIGNING_KEYS_DIR`` (``<kid>.pem`` files) and ``JWT_SIGNING_KEYS``
(a JSON object ``{kid: PEM}``); both may be set, a kid must not appear twice. Every key is
published in the JWKS; the kid that sorts last (as a string) signs. Rotation is: add a key
whose kid sorts last (a date such as ``2026-11-25`` does), roll out, and remove the old
key once the tokens it signed have expired (``ACCESS_TOKEN_TTL_SECONDS`` after rollout).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from shopstack_users.config import UsersSettings

ALGORITHM = "EdDSA"
# A kid ends up in file names, headers and logs: keep it plain.
_VALID_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SigningKeyError(RuntimeError):
    """The configured keys cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = dict(OKPAlgorithm.to_jwk(self.public_key, as_dict=True))
        jwk.update(kid=self.kid, alg=ALGORITHM, use="sig")
        return jwk


class KeyRing:
    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = sorted(keys, key=lambda key: key.kid)

    @property
    def signing_key(self) -> SigningKey | None:
        """The newest key: the one whose kid sorts last."""
        return self.keys[-1] if self.keys else None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in reversed(self.keys)]}

    @classmethod
    def from_settings(cls, settings: UsersSettings) -> KeyRing:
        pems: dict[str, tuple[str, bytes]] = {}  # kid -> (where it came from, PEM)
        directory = settings.jwt_signing_keys_dir
        if directory is not None:
            if not directory.is_dir():
                raise SigningKeyError(f"JWT_SIGNING_KEYS_DIR={directory} is not a directory")
            for path in sorted(directory.glob("*.pem")):
                pems[path.stem] = (str(path), path.read_bytes())
        if settings.jwt_signing_keys is not None:
            mapping = json.loads(settings.jwt_signing_keys.get_secret_value())
            for kid, pem in mapping.items():
                if kid in pems:
                    raise SigningKeyError(
                        f"kid {kid!r} is in both JWT_SIGNING_KEYS_DIR and JWT_SIGNING_KEYS"
                    )
                pems[kid] = ("JWT_SIGNING_KEYS", pem.encode())
        return cls([_load(kid, origin, pem) for kid, (origin, pem) in pems.items()])


def _load(kid: str, origin: str, pem: bytes) -> SigningKey:
    if not _VALID_KID.match(kid):
        raise SigningKeyError(f"{origin}: kid {kid!r} must match {_VALID_KID.pattern}")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{origin}: not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{origin}: kid {kid!r} is not an Ed25519 key")
    return SigningKey(kid=kid, private_key=key)


def new_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_new_key(directory: Path, kid: str) -> Path:
    """Create ``<directory>/<kid>.pem``, readable by its owner only."""
    if not _VALID_KID.match(kid):
        raise SigningKeyError(f"kid {kid!r} must match {_VALID_KID.pattern}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kid}.pem"
    with path.open("xb") as file:  # never overwrite: that would orphan live tokens
        path.chmod(0o600)
        file.write(new_private_key_pem())
    return path
