import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from shopstack_users.config import UsersSettings
from shopstack_users.keys import KeyRing, SigningKeyError, new_private_key_pem, write_new_key
from shopstack_users.passwords import common_passwords, policy_violation


def settings(**values: object) -> UsersSettings:
    return UsersSettings(database_url="postgresql://x@h/d", redis_url="redis://h", **values)  # type: ignore[arg-type]


def test_the_kid_sorting_last_signs_and_all_are_published(tmp_path: Path) -> None:
    for kid in ("2026-03-01", "2026-11-25", "2025-12-31"):
        write_new_key(tmp_path, kid)
    ring = KeyRing.from_settings(settings(jwt_signing_keys_dir=tmp_path))
    assert ring.signing_key is not None
    assert ring.signing_key.kid == "2026-11-25"
    assert [k["kid"] for k in ring.jwks()["keys"]] == ["2026-11-25", "2026-03-01", "2025-12-31"]


def test_dir_and_json_combine(tmp_path: Path) -> None:
    write_new_key(tmp_path, "a")
    extra = json.dumps({"b": new_private_key_pem().decode()})
    ring = KeyRing.from_settings(settings(jwt_signing_keys_dir=tmp_path, jwt_signing_keys=extra))
    assert [k.kid for k in ring.keys] == ["a", "b"]


def test_a_kid_in_both_places_is_an_error(tmp_path: Path) -> None:
    write_new_key(tmp_path, "a")
    extra = json.dumps({"a": new_private_key_pem().decode()})
    with pytest.raises(SigningKeyError, match="both"):
        KeyRing.from_settings(settings(jwt_signing_keys_dir=tmp_path, jwt_signing_keys=extra))


def test_only_ed25519_keys_are_accepted(tmp_path: Path) -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "rsa.pem").write_bytes(rsa_pem)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        KeyRing.from_settings(settings(jwt_signing_keys_dir=tmp_path))


@pytest.mark.parametrize(
    ("mapping", "message"),
    [({"k": "not a pem"}, "PEM"), ({"bad kid!": new_private_key_pem().decode()}, "kid")],
)
def test_bad_keys_say_what_is_wrong(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(SigningKeyError, match=message):
        KeyRing.from_settings(settings(jwt_signing_keys=json.dumps(mapping)))


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"k": 1}'])
def test_jwt_signing_keys_must_be_a_json_object(raw: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SIGNING_KEYS"):
        settings(jwt_signing_keys=raw)


def test_a_missing_keys_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="not a directory"):
        KeyRing.from_settings(settings(jwt_signing_keys_dir=tmp_path / "nope"))


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
