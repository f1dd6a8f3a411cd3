"""``shopstack-users``: the admin bootstrap after ``migrate``, ``generate-key``, and the
Flask CLI's administrative commands (``commands.py``) under the same name."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from shopstack_users import cli
from shopstack_users.accounts.service import find_by_email
from shopstack_users.config import UsersSettings
from shopstack_users.keys import KeyRing
from shopstack_users.resources import resources

if TYPE_CHECKING:
    from conftest import UsersApi


def roles_of(app: Flask, email: str) -> list[str]:
    with resources(app).sessions.begin() as session:
        user = find_by_email(session=session, email=email)
        assert user is not None
        return sorted(user.roles)


def test_create_admin_creates_then_is_idempotent(users_app: Flask, api: UsersApi) -> None:
    runner = users_app.test_cli_runner()
    args = ["create-admin", "--email", "Boss@Example.com", "--password", "a long admin secret"]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "created admin boss@example.com" in first.output
    again = runner.invoke(args=args)
    assert again.exit_code == 0
    assert "ensured" in again.output
    assert roles_of(users_app, "boss@example.com") == ["admin", "customer"]
    assert api.token("boss@example.com", "a long admin secret").status_code == 200


def test_create_admin_promotes_an_existing_user(users_app: Flask, api: UsersApi) -> None:
    api.register()
    result = users_app.test_cli_runner().invoke(
        args=["create-admin", "--email", "ada@example.com", "--password", "ignored but long"]
    )
    assert result.exit_code == 0, result.output
    assert roles_of(users_app, "ada@example.com") == ["admin", "customer"]
    assert api.token().status_code == 200  # the password was left alone


@pytest.mark.parametrize("password", ["short", "password1234", "boss@example.com"])
def test_create_admin_applies_the_password_policy(users_app: Flask, password: str) -> None:
    result = users_app.test_cli_runner().invoke(
        args=["create-admin", "--email", "boss@example.com", "--password", password]
    )
    assert result.exit_code != 0
    assert "password" in result.output


def settings_for(database_url: str, redis_url: str, **values: Any) -> UsersSettings:
    return UsersSettings(database_url=database_url, redis_url=redis_url, **values)


def test_bootstrap_admin_from_the_environment(
    users_app: Flask, database_url: str, redis_url: str, api: UsersApi
) -> None:
    settings = settings_for(
        database_url, redis_url, admin_email="root@shop.test", admin_password="bootstrap secret!"
    )
    cli.bootstrap_admin(settings)
    cli.bootstrap_admin(settings)  # idempotent
    assert roles_of(users_app, "root@shop.test") == ["admin", "customer"]
    assert api.token("root@shop.test", "bootstrap secret!").status_code == 200


def test_bootstrap_admin_refuses_a_weak_password(database_url: str, redis_url: str) -> None:
    settings = settings_for(
        database_url, redis_url, admin_email="root@shop.test", admin_password="123qweasdzxc"
    )
    with pytest.raises(cli.BootstrapError, match="too common"):
        cli.bootstrap_admin(settings)


def test_bootstrap_console_client_sets_up_the_consoles_own_client(
    users_app: Flask, database_url: str, redis_url: str, api: UsersApi
) -> None:
    def grant(secret: str) -> int:
        response = api.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "scope": "orders:read"},
            auth=("users-console", secret),
        )
        return response.status_code

    first = settings_for(database_url, redis_url, console_client_secret="first secret")
    cli.bootstrap_console_client(first)
    cli.bootstrap_console_client(first)  # idempotent
    assert grant("first secret") == 200
    # A new secret in the environment replaces the old one at the next migrate.
    cli.bootstrap_console_client(
        settings_for(database_url, redis_url, console_client_secret="second secret")
    )
    assert grant("second secret") == 200
    assert grant("first secret") == 401


def test_bootstrap_needs_both_variables() -> None:
    with pytest.raises(ValueError, match="SHOPSTACK_ADMIN_PASSWORD"):
        UsersSettings(database_url="postgresql://x@h/d", redis_url="redis://h", admin_email="a@b.c")


def test_generate_key_writes_a_usable_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    cli.main(["generate-key", str(keys), "--kid", "2030-01-01"])
    cli.main(["generate-key", str(keys), "--if-missing"])
    assert "nothing to do" in capsys.readouterr().out
    assert oct((keys / "2030-01-01.pem").stat().st_mode & 0o777) == "0o600"
    ring = KeyRing.from_settings(
        UsersSettings(
            database_url="postgresql://x@h/d", redis_url="redis://h", jwt_signing_keys_dir=keys
        )
    )
    assert ring.signing_key is not None
    assert ring.signing_key.kid == "2030-01-01"
    cli.main(["generate-key", str(keys)])  # today's date sorts after nothing older
    assert len(list(keys.glob("*.pem"))) == 2


def test_generate_key_never_overwrites(tmp_path: Path) -> None:
    cli.main(["generate-key", str(tmp_path), "--kid", "k1"])
    with pytest.raises(FileExistsError):
        cli.main(["generate-key", str(tmp_path), "--kid", "k1"])


def test_the_cli_runs_the_flask_commands(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ENVIRONMENT", "test")
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SystemExit) as exited:
        cli.main(["create-client", "--client-id", client_id, "--scope", "orders:read"])
    assert exited.value.code == 0


def test_gunicorn_runs_with_a_fixed_mmap_threshold_unless_one_is_set() -> None:
    # The argon2id blocks are then given back to the OS after every hash (see cli.py).
    assert cli.serving_environment({"PATH": "/bin"}) == {
        "PATH": "/bin",
        "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024),
    }
    assert cli.serving_environment({"MALLOC_MMAP_THRESHOLD_": "65536"}) == {
        "MALLOC_MMAP_THRESHOLD_": "65536"
    }
