"""The ``accounts`` blueprint: registration and the caller's own profile."""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

from shopstack_users.accounts.models import User
from shopstack_users.resources import resources

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

VALID = {
    "email": "  Ada@Example.com ",
    "password": "correct horse battery",
    "full_name": "Ada Lovelace",
}
PUBLIC_FIELDS = {"id", "email", "full_name", "roles", "created_at", "updated_at"}


def register(client: FlaskClient, **overrides: Any) -> TestResponse:
    return client.post("/api/v1/auth/register", json={**VALID, **overrides})


def fallbacks(operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "shopstack_dependency_fallbacks_total", {"dependency": "redis", "operation": operation}
    )
    return value or 0.0


def test_register_returns_the_public_user(client: FlaskClient) -> None:
    created = register(client)
    assert created.status_code == 201
    body = created.json
    assert body is not None
    assert set(body) == PUBLIC_FIELDS
    assert body["email"] == "ada@example.com"
    assert body["roles"] == ["customer"]


def test_me_needs_an_identity(client: FlaskClient) -> None:
    response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json is not None
    assert response.json["type"] == "/problems/authentication-required"


def test_me_reads_the_caller_from_the_gateway_headers(client: FlaskClient, api: UsersApi) -> None:
    user = api.register()
    response = client.get("/api/v1/users/me", headers=api.as_user(user["id"]))
    assert response.status_code == 200
    assert response.json == user


def test_a_service_client_has_no_me(client: FlaskClient, api: UsersApi) -> None:
    response = client.get("/api/v1/users/me", headers=api.as_client("reports", "users:read"))
    assert response.status_code == 403
    assert api.body(response)["type"] == "/problems/user-required"


def test_duplicate_email_is_409_case_insensitively(client: FlaskClient) -> None:
    assert register(client).status_code == 201
    duplicate = register(client, email="ADA@example.COM")
    assert duplicate.status_code == 409
    assert duplicate.mimetype == "application/problem+json"
    assert duplicate.json is not None
    assert duplicate.json["type"] == "/problems/email-taken"
    assert duplicate.json["errors"][0]["field"] == "email"


# One domain, spelled as Unicode, as its IDNA A-label (punycode) and in capitals.
IDN_SPELLINGS = ["ada@bücher.example", "ada@xn--bcher-kva.example", "Ada@BÜCHER.example"]


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for a in IDN_SPELLINGS for b in IDN_SPELLINGS if a != b],
)
def test_one_domain_however_spelled_is_one_account(
    client: FlaskClient, api: UsersApi, first: str, second: str
) -> None:
    created = register(client, email=first)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert api.body(created)["email"] == "ada@bücher.example"  # the one stored form
    duplicate = register(client, email=second)
    assert duplicate.status_code == 409, duplicate.get_data(as_text=True)
    assert api.body(duplicate)["type"] == "/problems/email-taken"
    # Either spelling signs in to the one account.
    assert api.token(email=second).status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": 42}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"password": 123456789012345}, "password"),
        ({"password": "ada@example.com"}, "password"),
        ({"password": "Ada@Example.com"}, "password"),
        ({"password": "123qweasdzxc"}, "password"),  # in the bundled common-password list
        ({"password": "QWERTY123456"}, "password"),  # ...compared case-insensitively
        ({"full_name": ""}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": ["Ada"]}, "full_name"),
        ({"full_name": "Ada\u0000Lovelace"}, "full_name"),  # PostgreSQL cannot store NUL
        ({"full_name": "Ada \ud800"}, "full_name"),  # no UTF-8 text holds a lone surrogate
        ({"password": "correct horse\u0000battery"}, "password"),
        ({"email": "ada\u0000@example.com"}, "email"),
        ({"roles": ["admin"]}, "roles"),  # roles never come from a body
    ],
)
def test_bad_input_names_the_field(
    client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    response = register(client, **payload)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert [e["field"] for e in response.json["errors"]] == [field]


def test_missing_fields_are_each_named(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/register", json={})
    assert response.status_code == 422
    assert response.json is not None
    assert {e["field"] for e in response.json["errors"]} == {"email", "password", "full_name"}


def test_a_body_that_is_not_an_object_is_refused(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/register", json=["ada@example.com"])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_password_is_stored_as_argon2id(users_app: Flask, api: UsersApi) -> None:
    user = api.register()
    with resources(users_app).sessions.begin() as session:
        row = session.get(User, uuid.UUID(user["id"]))
        assert row is not None
        assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert api.password not in row.password_hash


def test_update_me_changes_the_name(client: FlaskClient, api: UsersApi) -> None:
    user = api.register()
    headers = api.as_user(user["id"])
    changed = client.patch("/api/v1/users/me", json={"full_name": "Ada King"}, headers=headers)
    assert changed.status_code == 200
    assert changed.json is not None
    assert changed.json["full_name"] == "Ada King"
    assert client.get("/api/v1/users/me", headers=headers).json["full_name"] == "Ada King"


def test_changing_the_password_needs_the_current_one(client: FlaskClient, api: UsersApi) -> None:
    user = api.register()
    headers = api.as_user(user["id"])
    new = "a brand new long passphrase"
    missing = client.patch("/api/v1/users/me", json={"password": new}, headers=headers)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json["errors"]] == ["current_password"]
    wrong = client.patch(
        "/api/v1/users/me",
        json={"password": new, "current_password": "not the password"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json["errors"]] == ["current_password"]
    weak = client.patch(
        "/api/v1/users/me",
        json={"password": "ada@example.com", "current_password": api.password},
        headers=headers,
    )
    assert weak.status_code == 422
    assert [e["field"] for e in weak.json["errors"]] == ["password"]
    assert api.token(password=new).status_code == 400

    refresh = api.token().json["refresh_token"]
    changed = client.patch(
        "/api/v1/users/me",
        json={"password": new, "current_password": api.password},
        headers=headers,
    )
    assert changed.status_code == 200
    assert api.token().status_code == 400
    assert api.token(password=new).status_code == 200
    # A new password ends the sessions that the old one started.
    reused = api.form(
        "/api/v1/auth/token", {"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert reused.status_code == 400
    assert reused.json["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "payload",
    [{"roles": ["admin"]}, {"email": "new@example.com"}, {"is_active": False}, {"full_name": 7}],
)
def test_update_me_refuses_what_it_does_not_allow(
    client: FlaskClient, api: UsersApi, payload: dict[str, Any]
) -> None:
    user = api.register()
    headers = api.as_user(user["id"])
    response = client.patch("/api/v1/users/me", json=payload, headers=headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == list(payload)
    assert client.get("/api/v1/users/me", headers=headers).json == user


def test_reads_fall_back_to_postgres_when_redis_is_down(
    client: FlaskClient, make_app: AppFactory, dead_redis_url: str, api: UsersApi
) -> None:
    created = api.register()
    without_redis = make_app(redis_url=dead_redis_url)
    before = fallbacks("users.cache_get")
    read = without_redis.test_client().get("/api/v1/users/me", headers=api.as_user(created["id"]))
    assert read.status_code == 200
    assert read.json == created
    assert fallbacks("users.cache_get") == before + 1


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_redis_fallbacks_are_logged_once_per_burst(
    make_app: AppFactory, dead_redis_url: str, api: UsersApi
) -> None:
    created = api.register()
    # The app sets up logging when it is created; listen on the logger itself.
    client = make_app(redis_url=dead_redis_url).test_client()
    handler = Records()
    logger = logging.getLogger("shopstack_users.resources")
    logger.addHandler(handler)
    try:
        for _ in range(5):
            response = client.get("/api/v1/users/me", headers=api.as_user(created["id"]))
            assert response.status_code == 200
    finally:
        logger.removeHandler(handler)
    # Ten fallbacks (a failed get and a failed set per read), one line.
    lines = [r for r in handler.records if "Redis unavailable" in r.getMessage()]
    assert len(lines) == 1


@pytest.mark.parametrize("body", [{}, None])
def test_a_patch_must_change_something(client: FlaskClient, api: UsersApi, body: Any) -> None:
    user = api.register()
    response = client.patch("/api/v1/users/me", json=body, headers=api.as_user(user["id"]))
    assert response.status_code == 422
    assert [e["field"] for e in api.body(response)["errors"]] == ["body"]


def test_a_body_over_the_limit_is_a_413_problem(client: FlaskClient) -> None:
    response = register(client, full_name="x" * 70_000)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["type"] == "/problems/body-too-large"


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (
            "/api/v1/auth/register",
            "application/json",
            json.dumps({**VALID, "full_name": "x" * 70_000}).encode(),
        ),
        (
            "/api/v1/auth/token",
            "application/x-www-form-urlencoded",
            b"grant_type=password&username=ada%40example.com&password=" + b"x" * 70_000,
        ),
    ],
)
def test_a_chunked_body_over_the_limit_is_a_413_problem(
    client: FlaskClient, path: str, content_type: str, body: bytes
) -> None:
    # No Content-Length: the limit can only be noticed while reading, as a server that
    # terminates chunked bodies (gunicorn sets wsgi.input_terminated) hands them on.
    response = client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["type"] == "/problems/body-too-large"


def test_a_body_that_is_not_json_is_a_400_problem(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/register", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["type"] == "/problems/malformed-request"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/auth/register"), ("PATCH", "/api/v1/users/me")]
)
def test_a_body_nested_thousands_deep_is_a_400_problem(
    client: FlaskClient, api: UsersApi, method: str, path: str
) -> None:
    user = api.register()
    deep = '{"full_name": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.open(
        path,
        method=method,
        data=deep,
        content_type="application/json",
        headers=api.as_user(user["id"]),
    )
    assert response.status_code == 400
    assert api.body(response)["type"] == "/problems/malformed-request"
    assert "nested" in api.body(response)["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        # werkzeug alone would search for the text "a%ED%A0%80b".
        ("GET", "/api/v1/users?email_prefix=a%ED%A0%80b", None, "email_prefix"),
        ("POST", "/api/v1/auth/token", "grant_type=password&username=%FF&password=x", "username"),
    ],
)
def test_a_query_or_form_that_is_not_utf8_text_is_a_400_naming_the_field(
    *, client: FlaskClient, api: UsersApi, method: str, path: str, body: str | None, field: str
) -> None:
    admin = api.admin()
    response = client.open(
        path,
        method=method,
        data=body,
        content_type="application/x-www-form-urlencoded" if body else None,
        headers=api.as_user(admin["id"], "admin"),
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert api.body(response)["type"] == "/problems/malformed-request"
    assert [e["field"] for e in api.body(response)["errors"]] == [field]
