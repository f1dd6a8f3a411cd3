"""The token area's routes: the three grants, refresh rotation, revocation, the JWKS."""

from __future__ import annotations

import base64
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import select
from werkzeug.test import TestResponse

from shopstack_users.accounts.models import User
from shopstack_users.keys import write_new_key
from shopstack_users.resources import resources
from shopstack_users.tokens.models import RefreshToken

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

OLD_KID = "2026-01-01"
NEW_KID = "2026-06-01"
TOKEN = "/api/v1/auth/token"
REVOKE = "/api/v1/auth/revoke"


def verify(client: FlaskClient, token: str) -> dict[str, Any]:
    """Verify as a resource server would: against the published JWKS, with PyJWT."""
    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "EdDSA"
    key = jwks[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience="shopstack-api",
        issuer="shopstack",
        options={"require": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"]},
    )
    return claims


def oauth_error(response: TestResponse, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.json["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def create_client(app: Flask, client_id: str = "reports", *scopes: str) -> str:
    args = ["create-client", "--client-id", client_id]
    for scope in scopes or ("orders:read", "users:read"):
        args += ["--scope", scope]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    secret_line = next(line for line in result.output.splitlines() if "client_secret" in line)
    return secret_line.split()[-1]


# -- password grant ---------------------------------------------------------------------------


def test_password_grant_issues_a_verifiable_access_token(
    client: FlaskClient, api: UsersApi
) -> None:
    user = api.register()
    response = api.token()
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "orders profile"
    claims = verify(client, body["access_token"])
    assert claims["sub"] == user["id"]
    assert claims["roles"] == ["customer"]
    assert claims["scope"] == "orders profile"
    assert claims["client_id"] == "shopstack-web"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    assert uuid.UUID(hex=claims["jti"])


def test_password_grant_carries_the_admin_role(client: FlaskClient, api: UsersApi) -> None:
    api.admin()
    token = api.token("root@example.com").json["access_token"]
    assert verify(client, token)["roles"] == ["admin", "customer"]


def test_each_token_has_its_own_jti(api: UsersApi, client: FlaskClient) -> None:
    api.register()
    first, second = (api.token().json["access_token"] for _ in range(2))
    assert verify(client, first)["jti"] != verify(client, second)["jti"]


def test_requested_scope_is_narrowed(client: FlaskClient, api: UsersApi) -> None:
    api.register()
    response = api.token(scope="profile")
    assert response.status_code == 200
    assert response.json["scope"] == "profile"
    assert verify(client, response.json["access_token"])["scope"] == "profile"


@pytest.mark.parametrize("scope", ["admin", "profile admin", "", "bad\\scope", "two  spaces"])
def test_scope_outside_the_allowed_set_is_invalid_scope(api: UsersApi, scope: str) -> None:
    api.register()
    oauth_error(api.token(scope=scope), 400, "invalid_scope")


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "not the right password"),
        ("nobody@example.com", "correct horse battery"),
    ],
)
def test_wrong_credentials_are_invalid_grant(api: UsersApi, email: str, password: str) -> None:
    api.register()
    oauth_error(api.token(email, password), 400, "invalid_grant")


def test_username_is_matched_like_the_stored_email(api: UsersApi) -> None:
    api.register()
    assert api.token("  ADA@example.com").status_code == 200


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "ada@example.com"}, "invalid_request"),
        ({"grant_type": "password", "password": "x" * 20}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        (
            {"grant_type": "password", "username": "a@b.c", "password": "p" * 5000},
            "invalid_request",
        ),
        # PostgreSQL cannot store NUL: refused before any query.
        ({"grant_type": "password", "username": "a\x00b@c.d", "password": "x"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "x\x00"}, "invalid_request"),
    ],
)
def test_malformed_token_requests(client: FlaskClient, data: dict[str, str], error: str) -> None:
    oauth_error(client.post(TOKEN, data=data), 400, error)


def test_token_request_must_be_form_encoded(client: FlaskClient, api: UsersApi) -> None:
    api.register()
    response = client.post(
        TOKEN,
        json={"grant_type": "password", "username": "ada@example.com", "password": api.password},
    )
    oauth_error(response, 400, "invalid_request")


def test_repeated_parameters_are_invalid_request(client: FlaskClient) -> None:
    body = "grant_type=password&grant_type=client_credentials&username=a&password=b"
    response = client.post(TOKEN, data=body, content_type="application/x-www-form-urlencoded")
    oauth_error(response, 400, "invalid_request")


def test_disabled_account_cannot_log_in(client: FlaskClient, api: UsersApi) -> None:
    user = api.register()
    admin = api.admin()
    response = client.patch(
        f"/api/v1/users/{user['id']}",
        json={"is_active": False},
        headers=api.as_user(admin["id"], "admin"),
    )
    assert response.status_code == 200
    oauth_error(api.token(), 400, "invalid_grant")


def test_login_rehashes_when_the_parameters_changed(make_app: AppFactory, api: UsersApi) -> None:
    weaker = make_app(argon2_time_cost=1, argon2_memory_cost_kib=8 * 1024).test_client()
    response = weaker.post(
        "/api/v1/auth/register",
        json={"email": "old@example.com", "password": api.password, "full_name": "Old"},
    )
    assert response.status_code == 201

    def stored_hash() -> str:
        with resources(api.client.application).sessions.begin() as session:
            row = session.get(User, uuid.UUID(response.json["id"]))
            assert row is not None
            return row.password_hash

    assert "$m=8192,t=1,p=1$" in stored_hash()
    before = sample("shopstack_users_password_rehashes_total")
    assert api.token("old@example.com").status_code == 200
    assert "$m=19456,t=2,p=1$" in stored_hash()
    assert sample("shopstack_users_password_rehashes_total") == before + 1
    assert api.token("old@example.com").status_code == 200  # the new hash verifies
    assert sample("shopstack_users_password_rehashes_total") == before + 1


# -- refresh tokens ---------------------------------------------------------------------------


def refresh(api: UsersApi, token: str, **extra: str) -> TestResponse:
    return api.form(TOKEN, {"grant_type": "refresh_token", "refresh_token": token, **extra})


def test_refresh_rotates_the_refresh_token(client: FlaskClient, api: UsersApi) -> None:
    user = api.register()
    first = api.token().json
    second = refresh(api, first["refresh_token"])
    assert second.status_code == 200
    assert second.headers["Cache-Control"] == "no-store"
    assert second.json["refresh_token"] != first["refresh_token"]
    assert verify(client, second.json["access_token"])["sub"] == user["id"]
    third = refresh(api, second.json["refresh_token"])
    assert third.status_code == 200


def test_reusing_a_rotated_token_revokes_the_family(api: UsersApi) -> None:
    api.register()
    stolen = api.token().json["refresh_token"]
    rotated = refresh(api, stolen).json["refresh_token"]
    before = sample("shopstack_users_refresh_token_reuse_total")
    oauth_error(refresh(api, stolen), 400, "invalid_grant")
    assert sample("shopstack_users_refresh_token_reuse_total") == before + 1
    # The legitimate holder's newer token died with the family.
    oauth_error(refresh(api, rotated), 400, "invalid_grant")


def test_other_families_survive_a_reuse(api: UsersApi) -> None:
    api.register()
    laptop = api.token().json["refresh_token"]
    phone = api.token().json["refresh_token"]
    refresh(api, laptop)
    refresh(api, laptop)  # re-use: the laptop's family is revoked
    assert refresh(api, phone).status_code == 200


def test_refresh_may_narrow_but_not_widen_the_scope(api: UsersApi, client: FlaskClient) -> None:
    api.register()
    token = api.token(scope="profile").json["refresh_token"]
    oauth_error(refresh(api, token, scope="profile orders"), 400, "invalid_scope")
    narrowed = refresh(api, token, scope="profile")
    assert narrowed.status_code == 200
    assert narrowed.json["scope"] == "profile"


def test_refresh_reads_the_current_roles(api: UsersApi, client: FlaskClient) -> None:
    user = api.register()
    admin = api.admin()
    token = api.token().json["refresh_token"]
    response = client.put(
        f"/api/v1/users/{user['id']}/roles",
        json={"roles": ["customer", "admin"]},
        headers=api.as_user(admin["id"], "admin"),
    )
    assert response.status_code == 200
    refreshed = refresh(api, token).json["access_token"]
    assert verify(client, refreshed)["roles"] == ["admin", "customer"]


@pytest.mark.parametrize("token", ["", "x", "not-a-token-we-issued" * 3])
def test_unknown_refresh_tokens_are_invalid_grant(api: UsersApi, token: str) -> None:
    response = refresh(api, token)
    expected = "invalid_request" if not token else "invalid_grant"
    oauth_error(response, 400, expected)


def test_a_disabled_accounts_refresh_token_is_invalid_grant(
    client: FlaskClient, api: UsersApi
) -> None:
    user = api.register()
    token = api.token().json["refresh_token"]
    response = client.patch(
        f"/api/v1/users/{user['id']}",
        json={"is_active": False},
        headers=api.as_user(api.admin()["id"], "admin"),
    )
    assert response.status_code == 200
    refused = refresh(api, token)
    oauth_error(refused, 400, "invalid_grant")
    assert refused.json["error_description"] == "The refresh token is invalid, expired or revoked."


def test_a_refresh_counts_as_a_refresh_token_grant(api: UsersApi) -> None:
    api.register()
    token = api.token().json["refresh_token"]
    labels = {"grant_type": "refresh_token"}
    before = sample("shopstack_users_tokens_issued_total", labels)
    assert refresh(api, token).status_code == 200
    assert sample("shopstack_users_tokens_issued_total", labels) == before + 1


def test_expired_refresh_token_is_invalid_grant(api: UsersApi) -> None:
    api.register()
    token = api.token().json["refresh_token"]
    with resources(api.client.application).sessions.begin() as session:
        for row in session.scalars(select(RefreshToken)):
            row.expires_at = row.created_at
    oauth_error(refresh(api, token), 400, "invalid_grant")


# -- revocation -------------------------------------------------------------------------------


def test_revoke_ends_the_refresh_token(api: UsersApi) -> None:
    api.register()
    token = api.token().json["refresh_token"]
    rotated = refresh(api, token).json["refresh_token"]
    response = api.form(REVOKE, {"token": rotated, "token_type_hint": "refresh_token"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    oauth_error(refresh(api, rotated), 400, "invalid_grant")


@pytest.mark.parametrize("token", ["never-issued", "eyJhbGciOiJFZERTQSJ9.e30.sig"])
def test_revoking_an_unknown_token_is_ok(api: UsersApi, token: str) -> None:
    assert api.form(REVOKE, {"token": token}).status_code == 200


def test_revoke_needs_a_token(api: UsersApi) -> None:
    oauth_error(api.form(REVOKE, {}), 400, "invalid_request")


# -- client credentials -----------------------------------------------------------------------


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_client_credentials_with_basic_auth(users_app: Flask, client: FlaskClient) -> None:
    secret = create_client(users_app)
    response = client.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers=basic("reports", secret)
    )
    assert response.status_code == 200
    body = response.json
    assert "refresh_token" not in body
    assert body["scope"] == "orders:read users:read"
    claims = verify(client, body["access_token"])
    assert claims["sub"] == "reports"
    assert claims["client_id"] == "reports"
    assert claims["roles"] == []


def test_client_credentials_in_the_body_and_narrowed(users_app: Flask, client: FlaskClient) -> None:
    secret = create_client(users_app)
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "reports",
            "client_secret": secret,
            "scope": "orders:read",
        },
    )
    assert response.status_code == 200
    assert response.json["scope"] == "orders:read"


@pytest.mark.parametrize(
    ("client_id", "use_real_secret"), [("reports", False), ("nobody", True), ("BAD ID", True)]
)
def test_client_credentials_wrong_client_is_401(
    users_app: Flask, client: FlaskClient, client_id: str, use_real_secret: bool
) -> None:
    secret = create_client(users_app)
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret if use_real_secret else "wrong-secret"),
    )
    oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_client_credentials_without_authentication_is_401(client: FlaskClient) -> None:
    response = client.post(TOKEN, data={"grant_type": "client_credentials"})
    oauth_error(response, 401, "invalid_client")


def test_client_credentials_two_methods_is_invalid_request(
    users_app: Flask, client: FlaskClient
) -> None:
    secret = create_client(users_app)
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "client_secret": secret},
        headers=basic("reports", secret),
    )
    oauth_error(response, 400, "invalid_request")


def test_client_credentials_scope_not_allowed(users_app: Flask, client: FlaskClient) -> None:
    secret = create_client(users_app)
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": "users:write"},
        headers=basic("reports", secret),
    )
    oauth_error(response, 400, "invalid_scope")


def test_deleted_client_cannot_get_tokens(users_app: Flask, client: FlaskClient) -> None:
    secret = create_client(users_app)
    runner = users_app.test_cli_runner()
    listed = runner.invoke(args=["list-clients"])
    assert "reports\torders:read users:read" in listed.output
    assert runner.invoke(args=["delete-client", "--client-id", "reports"]).exit_code == 0
    assert runner.invoke(args=["delete-client", "--client-id", "reports"]).exit_code != 0
    response = client.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers=basic("reports", secret)
    )
    oauth_error(response, 401, "invalid_client")


def test_client_ids_are_unique(users_app: Flask) -> None:
    create_client(users_app)
    result = users_app.test_cli_runner().invoke(args=["create-client", "--client-id", "reports"])
    assert result.exit_code != 0
    assert "already exists" in result.output


# -- keys -------------------------------------------------------------------------------------


def test_jwks_is_cacheable_and_public_only(client: FlaskClient) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    (key,) = response.json["keys"]
    assert key == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": key["x"],
        "kid": "2026-01-01",
        "alg": "EdDSA",
        "use": "sig",
    }
    assert "d" not in key


def test_rotation_newest_key_signs_and_old_tokens_still_verify(
    make_app: AppFactory, key_dirs: dict[str, Path], api: UsersApi
) -> None:
    api.register()
    old_token = api.token().json["access_token"]
    assert jwt.get_unverified_header(old_token)["kid"] == "2026-01-01"

    rotated = make_app(jwt_signing_keys_dir=key_dirs["rotated"]).test_client()
    kids = [k["kid"] for k in rotated.get("/.well-known/jwks.json").json["keys"]]
    assert sorted(kids) == ["2026-01-01", "2026-06-01"]
    new_token = rotated.post(
        TOKEN,
        data={"grant_type": "password", "username": "ada@example.com", "password": api.password},
    ).json["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-06-01"
    assert verify(rotated, old_token)["sub"] == verify(rotated, new_token)["sub"]


def test_keys_can_come_from_one_json_variable(
    make_app: AppFactory, key_dirs: dict[str, Path], api: UsersApi
) -> None:
    pems = {p.stem: p.read_text() for p in key_dirs["rotated"].glob("*.pem")}
    app = make_app(jwt_signing_keys_dir=None, jwt_signing_keys=json.dumps(pems))
    api.register()
    response = app.test_client().post(
        TOKEN,
        data={"grant_type": "password", "username": "ada@example.com", "password": api.password},
    )
    assert jwt.get_unverified_header(response.json["access_token"])["kid"] == "2026-06-01"


def test_without_a_key_development_answers_503(make_app: AppFactory, api: UsersApi) -> None:
    api.register()
    client = make_app(jwt_signing_keys_dir=None).test_client()
    assert client.get("/.well-known/jwks.json").json == {"keys": []}
    response = client.post(
        TOKEN,
        data={"grant_type": "password", "username": "ada@example.com", "password": api.password},
    )
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "/problems/no-signing-key"
    assert response.headers["Cache-Control"] == "no-store"


def password_grant(client: FlaskClient, api: UsersApi) -> TestResponse:
    return client.post(
        TOKEN,
        data={"grant_type": "password", "username": "ada@example.com", "password": api.password},
    )


def test_a_key_added_to_the_directory_signs_without_a_restart(
    make_app: AppFactory, key_dirs: dict[str, Path], tmp_path: Path, api: UsersApi
) -> None:
    """As when the kubelet updates a mounted Secret: the running app picks the new key up."""
    directory = tmp_path / "keys"
    directory.mkdir()
    shutil.copy(key_dirs["old"] / f"{OLD_KID}.pem", directory)
    client = make_app(
        jwt_signing_keys_dir=directory, jwt_signing_keys_reload_seconds=0
    ).test_client()
    api.register()
    before = api.body(password_grant(client, api))["access_token"]
    assert jwt.get_unverified_header(before)["kid"] == OLD_KID

    write_new_key(directory, NEW_KID)
    after = api.body(password_grant(client, api))["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == NEW_KID
    kids = [key["kid"] for key in api.body(client.get("/.well-known/jwks.json"))["keys"]]
    assert kids == [NEW_KID, OLD_KID]  # the signing key first, the old one still published
    assert verify(client, before)["sub"] == verify(client, after)["sub"]

    # A key file that cannot be read leaves the keys in use alone.
    (directory / "2027-01-01.pem").write_text("half a PEM")
    still = api.body(password_grant(client, api))["access_token"]
    assert jwt.get_unverified_header(still)["kid"] == NEW_KID
    (directory / "2027-01-01.pem").unlink()
    (directory / f"{OLD_KID}.pem").unlink()  # retired once its tokens expired
    kids = [key["kid"] for key in api.body(client.get("/.well-known/jwks.json"))["keys"]]
    assert kids == [NEW_KID]
