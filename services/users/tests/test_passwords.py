"""Password hashing and the password policy."""

from __future__ import annotations

import pytest

from shopstack_users.passwords import common_passwords, policy_violation


def test_the_bundled_common_password_list_is_a_real_one() -> None:
    listed = common_passwords()
    assert len(listed) > 29_000
    assert {"123456", "password", "qwerty", "iloveyou", "1qaz2wsx3edc"} <= listed


@pytest.mark.parametrize(
    ("password", "email", "problem"),
    [
        ("short", None, "at least 12"),
        ("x" * 129, None, "at most 128"),
        ("ada@example.com", "Ada@Example.com", "email"),
        ("adalovelace1815", "adalovelace1815@example.com", "email"),
        ("1q2w3e4r5t6y", None, "too common"),
        ("QAZWSXEDCRFV", None, "too common"),
        ("correct horse battery", "ada@example.com", None),
        ("x" * 128, None, None),
    ],
)
def test_password_policy(password: str, email: str | None, problem: str | None) -> None:
    found = policy_violation(password, email=email)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
