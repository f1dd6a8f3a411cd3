"""The key ring: where keys come from, which one signs, and re-reading the directory."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from shopstack_users.config import UsersSettings
from shopstack_users.keys import KeyRing, SigningKeyError, new_private_key_pem, write_new_key


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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kids(ring: KeyRing) -> list[str]:
    return [key.kid for key in ring.keys]


def test_the_directory_is_looked_at_again_only_after_the_interval(tmp_path: Path) -> None:
    write_new_key(tmp_path, "2026-01-01")
    clock = Clock()
    ring = KeyRing(directory=tmp_path, reload_seconds=5, clock=clock)
    write_new_key(tmp_path, "2026-02-01")
    clock.now += 4.9
    assert kids(ring) == ["2026-01-01"]
    clock.now += 0.2
    assert kids(ring) == ["2026-01-01", "2026-02-01"]
    assert ring.signing_key is not None
    assert ring.signing_key.kid == "2026-02-01"


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    """Kubernetes swaps a Secret's files for new ones; same names, other contents."""
    path = write_new_key(tmp_path, "k")
    clock = Clock()
    ring = KeyRing(directory=tmp_path, reload_seconds=1, clock=clock)
    first = ring.jwks()["keys"][0]["x"]
    replacement = tmp_path / "k.pem.new"
    replacement.write_bytes(new_private_key_pem())
    os.replace(replacement, path)
    clock.now += 1
    assert ring.jwks()["keys"][0]["x"] != first


@pytest.mark.parametrize("breakage", ["bad pem", "emptied", "directory gone"])
def test_a_broken_directory_keeps_the_keys_in_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, breakage: str
) -> None:
    directory = tmp_path / "keys"
    path = write_new_key(directory, "2026-01-01")
    clock = Clock()
    ring = KeyRing(directory=directory, reload_seconds=1, clock=clock)
    if breakage == "bad pem":
        (directory / "2026-02-01.pem").write_text("not a key")
    elif breakage == "emptied":
        path.unlink()
    else:
        path.unlink()
        directory.rmdir()
    with caplog.at_level(logging.WARNING, logger="shopstack_users.keys"):
        for _ in range(3):
            clock.now += 1
            assert kids(ring) == ["2026-01-01"]
    # One line for the breakage, not one per look.
    assert len([r for r in caplog.records if "not reloaded" in r.getMessage()]) == 1
    if breakage == "bad pem":
        (directory / "2026-02-01.pem").write_bytes(new_private_key_pem())
        clock.now += 1
        assert kids(ring) == ["2026-01-01", "2026-02-01"]


def test_keys_from_the_variable_alone_are_never_looked_for(tmp_path: Path) -> None:
    clock = Clock()
    ring = KeyRing(inline={"a": new_private_key_pem().decode()}, reload_seconds=0, clock=clock)
    clock.now += 100
    assert kids(ring) == ["a"]
