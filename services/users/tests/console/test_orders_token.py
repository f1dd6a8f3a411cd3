"""The console's own client-credentials grant on the real database: when it fails (a secret
the database does not hold, a service without a signing key), the user page says why the
orders cannot be shown instead of failing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from shopstack_devstack.ports import free_port
from shopstack_users.console.orders_api import SCOPE
from shopstack_users.resources import resources
from shopstack_users.tokens import service as tokens

if TYPE_CHECKING:
    from conftest import AppFactory

    from .conftest import Console, ConsoleHelpers

SECRET = "the console's secret"
# Where nothing listens: a grant that succeeds finds the orders API away.
ORDERS_API = f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def users_app(make_app: AppFactory, request: pytest.FixtureRequest, tmp_path: Path) -> Flask:
    """The console connected to the orders API; ``keyless`` (indirect): with an empty keys
    directory."""
    keyless = getattr(request, "param", None) == "keyless"
    return make_app(
        console_orders_api_url=ORDERS_API,
        console_client_secret=SECRET,
        **({"jwt_signing_keys_dir": tmp_path} if keyless else {}),
    )


def test_a_secret_the_database_does_not_hold_is_said_on_the_page(
    signed_in: Console, admin: dict[str, Any], helpers: ConsoleHelpers
) -> None:
    page = signed_in.get(f"/admin/users/{admin['id']}")
    assert page.status_code == 200
    text = helpers.text_of(page)
    assert "Orders cannot be shown right now" in text
    assert "client 'users-console': invalid_client" in text


def hold_the_console_client(app: Flask) -> None:
    held = resources(app)
    tokens.ensure_client(
        sessions=held.sessions,
        passwords=held.passwords,
        client_id=held.settings.console_client_id,
        secret=SECRET,
        scopes=[SCOPE],
    )


def test_with_its_token_granted_an_orders_api_away_is_said_on_the_page(
    users_app: Flask, signed_in: Console, admin: dict[str, Any], helpers: ConsoleHelpers
) -> None:
    hold_the_console_client(users_app)
    page = signed_in.get(f"/admin/users/{admin['id']}")
    assert page.status_code == 200
    text = helpers.text_of(page)
    assert "Orders cannot be shown right now: The orders API could not be reached" in text
    assert "invalid_client" not in text


@pytest.mark.parametrize("users_app", ["keyless"], indirect=True)
def test_a_service_without_a_signing_key_is_said_on_the_page(
    users_app: Flask, signed_in: Console, admin: dict[str, Any], helpers: ConsoleHelpers
) -> None:
    hold_the_console_client(users_app)
    page = signed_in.get(f"/admin/users/{admin['id']}")
    assert page.status_code == 200
    text = helpers.text_of(page)
    assert "Orders cannot be shown right now" in text
    assert "no token signing key" in text
