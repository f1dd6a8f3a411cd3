"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import functools
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from shopstack_users.config import UsersSettings

MIN_LENGTH = 12
MAX_LENGTH = 128


def make_hasher(settings: UsersSettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
        type=Type.ID,
    )


class Passwords:
    """Hashes and verifies with the configured parameters, and says when a stored hash was
    made with others (so a login can re-hash it)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        # Verified against when the account does not exist, so an unknown email costs as
        # much time as a wrong password and response times do not reveal which it was.
        self._decoy = hasher.hash("decoy password, never matches anything")

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash or self._decoy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list (data/common_passwords.txt), lower-cased."""
    text = resources.files("shopstack_users").joinpath("data/common_passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("# ")
    )


def policy_violation(password: str, *, email: str | None) -> str | None:
    """Why ``password`` is not acceptable, or ``None``. Length first, then the checks that
    need the value: not the email (or its local part), not a commonly used password."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters long"
    folded = password.strip().lower()
    if email:
        address = email.strip().lower()
        if folded in {address, address.partition("@")[0]}:
            return "must not be the email address"
    if folded in common_passwords():
        return "is too common: it appears in lists of leaked passwords"
    return None
