"""Password hashing and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from shopstack_users.passwords import Passwords, common_passwords, policy_violation

# The lowest cost argon2 allows: these tests are about the answers, not the cost.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_the_bundled_common_password_list_is_a_real_one() -> None:
    listed = common_passwords()
    assert len(listed) > 29_000
    assert {"123456", "password", "qwerty", "iloveyou", "1qaz2wsx3edc"} <= listed


@pytest.mark.parametrize(
    ("password", "email", "problem"),
    [
        ("short", None, "must be at least 12 characters long"),
        ("x" * 129, None, "must be at most 128 characters long"),
        ("ada@example.com", "Ada@Example.com", "must not be the email address"),
        ("adalovelace1815", "adalovelace1815@example.com", "must not be the email address"),
        ("1q2w3e4r5t6y", None, "is too common: it appears in lists of leaked passwords"),
        ("QAZWSXEDCRFV", None, "is too common: it appears in lists of leaked passwords"),
        ("correct horse battery", "ada@example.com", None),
        ("x" * 128, None, None),
    ],
)
def test_password_policy(password: str, email: str | None, problem: str | None) -> None:
    found = policy_violation(password, email=email)
    if problem is None:
        assert found is None
    else:
        assert found == problem


def test_a_password_verifies_against_its_own_hash_only() -> None:
    passwords = Passwords(FAST)
    stored = passwords.hash("correct horse battery")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "correct horse battery!")
    assert not passwords.verify("not an argon2 hash", "correct horse battery")


def test_no_password_opens_an_account_that_has_none() -> None:
    passwords = Passwords(FAST)
    # Not even the decoy's own password: an unknown account is never signed in to.
    assert not passwords.verify(None, "decoy password, never matches anything")
    assert not passwords.verify(None, "correct horse battery")


def test_a_hash_of_other_parameters_or_none_at_all_needs_rehashing() -> None:
    passwords = Passwords(FAST)
    assert not passwords.needs_rehash(passwords.hash("correct horse battery"))
    assert Passwords(PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)).needs_rehash(
        passwords.hash("correct horse battery")
    )
    assert passwords.needs_rehash("not an argon2 hash")
