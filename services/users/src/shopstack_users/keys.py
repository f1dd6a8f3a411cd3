"""The access-token signing keys: Ed25519, one per ``kid``, from configuration.

Keys come from ``JWT_SIGNING_KEYS_DIR`` (``<kid>.pem`` files) and ``JWT_SIGNING_KEYS``
(a JSON object ``{kid: PEM}``); both may be set, a kid must not appear twice. Every key is
published in the JWKS; the kid that sorts last (as a string) signs.

The directory is looked at again at most every ``JWT_SIGNING_KEYS_RELOAD_SECONDS``: when a
file was added, replaced or removed (by name, inode, size and modification time; a mounted
Kubernetes Secret swaps all of them at once), the keys are read again. So a key added to the
Secret signs within seconds of the kubelet writing it, without a restart. Keys that cannot be
read at start-up stop the service; keys that cannot be read later (a file half copied, a
broken PEM, an emptied directory) are logged and the previous keys stay in use until the
files are right.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from shopstack_users.config import UsersSettings

ALGORITHM = "EdDSA"
# A kid ends up in file names, headers and logs: keep it plain.
_VALID_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

logger = logging.getLogger(__name__)

# What the directory looked like: (file name, inode, size, mtime in ns) per key file.
Listing = tuple[tuple[str, int, int, int], ...]


class SigningKeyError(RuntimeError):
    """The configured keys cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    # Where it was read from: the file, or JWT_SIGNING_KEYS.
    origin: str = ""
    # When its file was written (its modification time); unknown for JWT_SIGNING_KEYS.
    created_at: datetime | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = dict(OKPAlgorithm.to_jwk(self.public_key, as_dict=True))
        jwk.update(kid=self.kid, alg=ALGORITHM, use="sig")
        return jwk

    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint of the public key (SHA-256, base64url), which tells keys
        apart whatever their kid."""
        jwk = self.jwk()
        members = {name: jwk[name] for name in ("crv", "kty", "x")}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha256(canonical).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class KeyRing:
    """The current keys, sorted by kid. Safe to share between threads: a reload swaps one
    tuple, and only one thread does it while the others go on with the keys they have."""

    def __init__(
        self,
        *,
        directory: Path | None = None,
        inline: Mapping[str, str] | None = None,
        reload_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._inline = dict(inline or {})
        self._reload_seconds = reload_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._listing = self._list()
        self._keys = self._load(self._listing)
        self._checked_at = clock()
        # What went wrong at the last look, so a broken file is logged once, not every time.
        self._refusal: str | None = None

    @classmethod
    def from_settings(cls, settings: UsersSettings) -> KeyRing:
        inline: dict[str, str] = {}
        if settings.jwt_signing_keys is not None:
            inline = json.loads(settings.jwt_signing_keys.get_secret_value())
        return cls(
            directory=settings.jwt_signing_keys_dir,
            inline=inline,
            reload_seconds=settings.jwt_signing_keys_reload_seconds,
        )

    @property
    def keys(self) -> Sequence[SigningKey]:
        self._reload_if_due()
        return self._keys

    @property
    def signing_key(self) -> SigningKey | None:
        """The newest key: the one whose kid sorts last."""
        keys = self.keys
        return keys[-1] if keys else None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in reversed(self.keys)]}

    def _reload_if_due(self) -> None:
        if self._directory is None or self._clock() - self._checked_at < self._reload_seconds:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is looking; use the keys we have meanwhile
        try:
            self._checked_at = self._clock()
            try:
                listing = self._list()
                if listing == self._listing:
                    return
                keys = self._load(listing)
                if not keys:
                    raise SigningKeyError(f"{self._directory} holds no key any more")
            except (OSError, SigningKeyError) as error:
                if str(error) != self._refusal:
                    self._refusal = str(error)
                    logger.warning(
                        "signing keys not reloaded, the %d in use stay: %s", len(self._keys), error
                    )
                return
            before = [key.kid for key in self._keys]
            self._keys, self._listing, self._refusal = keys, listing, None
            logger.info(
                "signing keys reloaded: %s (before: %s); %s signs",
                [key.kid for key in keys],
                before,
                keys[-1].kid,
            )
        finally:
            self._lock.release()

    def _list(self) -> Listing:
        directory = self._directory
        if directory is None:
            return ()
        if not directory.is_dir():
            raise SigningKeyError(f"JWT_SIGNING_KEYS_DIR={directory} is not a directory")
        entries = []
        for path in directory.glob("*.pem"):
            status = path.stat()  # follows the Secret's symlinks to the files themselves
            entries.append((path.name, status.st_ino, status.st_size, status.st_mtime_ns))
        return tuple(sorted(entries))

    def _load(self, listing: Listing) -> tuple[SigningKey, ...]:
        # kid -> (where it came from, PEM, when it was written)
        pems: dict[str, tuple[str, bytes, datetime | None]] = {}
        if self._directory is not None:
            for name, _inode, _size, mtime_ns in listing:
                path = self._directory / name
                written = datetime.fromtimestamp(mtime_ns / 1e9, UTC)
                pems[path.stem] = (str(path), path.read_bytes(), written)
        for kid, pem in self._inline.items():
            if kid in pems:
                raise SigningKeyError(
                    f"kid {kid!r} is in both JWT_SIGNING_KEYS_DIR and JWT_SIGNING_KEYS"
                )
            pems[kid] = ("JWT_SIGNING_KEYS", pem.encode(), None)
        keys = [_parse(kid, *found) for kid, found in pems.items()]
        return tuple(sorted(keys, key=lambda key: key.kid))


def _parse(kid: str, origin: str, pem: bytes, created_at: datetime | None) -> SigningKey:
    if not _VALID_KID.fullmatch(kid):
        raise SigningKeyError(f"{origin}: kid {kid!r} must match {_VALID_KID.pattern}")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{origin}: not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{origin}: kid {kid!r} is not an Ed25519 key")
    return SigningKey(kid=kid, private_key=key, origin=origin, created_at=created_at)


def new_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_new_key(directory: Path, kid: str) -> Path:
    """Create ``<directory>/<kid>.pem``, readable by its owner only."""
    if not _VALID_KID.fullmatch(kid):
        raise SigningKeyError(f"kid {kid!r} must match {_VALID_KID.pattern}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kid}.pem"
    with path.open("xb") as file:  # never overwrite: that would orphan live tokens
        path.chmod(0o600)
        file.write(new_private_key_pem())
    return path
