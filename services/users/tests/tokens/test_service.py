"""What the grants promise beyond their error codes: the exact descriptions clients show, the
counters operators alert on, scopes, the throttle's per-address key, and revocation that ends
one family only and keeps the time each token was revoked."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import select
from werkzeug.test import TestResponse

from shopstack_users.resources import resources
from shopstack_users.tokens.models import RefreshToken

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

TOKEN = "/api/v1/auth/token"
REVOKE = "/api/v1/auth/revoke"
ISSUED = "shopstack_users_tokens_issued_total"


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def refresh(api: UsersApi, token: str, **extra: str) -> TestResponse:
    return api.form(TOKEN, {"grant_type": "refresh_token", "refresh_token": token, **extra})


def described(response: TestResponse, error: str, description: str) -> None:
    assert response.json["error"] == error, response.get_data(as_text=True)
    assert response.json["error_description"] == description


def disable(api: UsersApi, user: dict[str, Any]) -> None:
    response = api.client.patch(
        f"/api/v1/users/{user['id']}",
        json={"is_active": False},
        headers=api.as_user(api.admin()["id"], "admin"),
    )
    assert response.status_code == 200


def test_a_wrong_password_is_described_and_counted(api: UsersApi) -> None:
    api.register()
    outcome = {"outcome": "bad_password"}
    before = sample("shopstack_users_logins_total", outcome)
    refused = api.token(password="not the right password")
    described(refused, "invalid_grant", "The email or password is wrong.")
    assert sample("shopstack_users_logins_total", outcome) == before + 1


def test_a_disabled_account_is_described_and_counted(api: UsersApi) -> None:
    disable(api, api.register())
    outcome = {"outcome": "disabled"}
    before = sample("shopstack_users_logins_total", outcome)
    described(api.token(), "invalid_grant", "The account is disabled.")
    assert sample("shopstack_users_logins_total", outcome) == before + 1


def test_a_sign_in_counts_as_ok_and_as_a_password_grant(api: UsersApi) -> None:
    api.register()
    ok = {"outcome": "ok"}
    grant = {"grant_type": "password"}
    before = (sample("shopstack_users_logins_total", ok), sample(ISSUED, grant))
    assert api.token().status_code == 200
    assert (sample("shopstack_users_logins_total", ok), sample(ISSUED, grant)) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_throttling_is_per_address_and_counted(make_app: AppFactory, api: UsersApi) -> None:
    api.client = make_app(login_max_failures=2).test_client()
    api.register()
    throttled = {"outcome": "throttled"}
    for _ in range(2):
        assert api.token(password="not the right password", address="198.51.100.1").status_code
    before = sample("shopstack_users_logins_total", throttled)
    refused = api.token(address="198.51.100.1")
    assert refused.status_code == 429, refused.get_data(as_text=True)
    assert sample("shopstack_users_logins_total", throttled) == before + 1
    # Another address is not held back by the first one's failures.
    assert api.token(address="198.51.100.2").status_code == 200


@pytest.mark.parametrize(
    ("scope", "description"),
    [
        ("profile  orders", "scope must be space-separated scope tokens"),
        ("bad\\scope", "scope must be space-separated scope tokens"),
        ("", "scope must be space-separated scope tokens"),
        ("profile admin root", "scope not allowed: admin root"),
    ],
)
def test_a_refused_scope_is_described(api: UsersApi, scope: str, description: str) -> None:
    api.register()
    described(api.token(scope=scope), "invalid_scope", description)


def test_two_requested_scopes_are_granted_sorted_and_space_separated(api: UsersApi) -> None:
    api.register()
    granted = api.token(scope="profile orders")
    assert granted.status_code == 200
    assert granted.json["scope"] == "orders profile"
    claims = jwt.decode(granted.json["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "orders profile"


def test_a_refresh_token_carries_256_random_bits(api: UsersApi) -> None:
    api.register()
    token = api.token().json["refresh_token"]
    # secrets.token_urlsafe(32): 32 bytes in unpadded base64url.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)


def test_client_credentials_tokens_carry_the_scope_and_lifetime(
    users_app: Flask, api: UsersApi
) -> None:
    result = users_app.test_cli_runner().invoke(
        args=["create-client", "--client-id", "reports", "--scope", "orders:read"]
    )
    assert result.exit_code == 0, result.output
    secret = next(line for line in result.output.splitlines() if "client_secret" in line).split()[
        -1
    ]
    grant = {"grant_type": "client_credentials"}
    before = sample(ISSUED, grant)
    response = api.form(
        TOKEN, {"grant_type": "client_credentials", "client_id": "reports", "client_secret": secret}
    )
    assert response.status_code == 200
    assert response.json["expires_in"] == resources(users_app).settings.access_token_ttl_seconds
    claims = jwt.decode(response.json["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "orders:read"
    assert sample(ISSUED, grant) == before + 1


def test_a_failed_client_authentication_is_described(api: UsersApi) -> None:
    refused = api.form(
        TOKEN, {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    )
    assert refused.status_code == 401
    described(refused, "invalid_client", "Client authentication failed.")


def test_without_a_signing_key_the_problem_says_so(make_app: AppFactory, api: UsersApi) -> None:
    api.register()
    api.client = make_app(jwt_signing_keys_dir=None).test_client()
    response = api.token()
    assert response.status_code == 503
    assert response.json["detail"] == "The service has no token signing key configured."


def _revoked_at(app: Flask) -> dict[str, datetime | None]:
    with resources(app).sessions.begin() as session:
        return {row.token_hash: row.revoked_at for row in session.scalars(select(RefreshToken))}


def test_revoking_one_family_leaves_the_others(api: UsersApi) -> None:
    api.register()
    laptop = api.token().json["refresh_token"]
    phone = api.token().json["refresh_token"]
    assert api.form(REVOKE, {"token": laptop}).status_code == 200
    assert refresh(api, laptop).json["error"] == "invalid_grant"
    assert refresh(api, phone).status_code == 200


def test_a_revoked_token_keeps_the_time_it_was_revoked(api: UsersApi) -> None:
    api.register()
    first = api.token().json["refresh_token"]
    assert api.form(REVOKE, {"token": first}).status_code == 200
    revoked = _revoked_at(api.client.application)
    assert all(when is not None for when in revoked.values())
    assert api.form(REVOKE, {"token": first}).status_code == 200
    assert _revoked_at(api.client.application) == revoked
