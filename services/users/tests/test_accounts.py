from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

AppFactory = Callable[..., Flask]

VALID = {
    "email": "Ada@Example.com",
    "password": "correct horse battery",
    "full_name": "Ada Lovelace",
}


def register(client: FlaskClient, **overrides: Any) -> Any:
    return client.post("/api/v1/auth/register", json={**VALID, **overrides})


def test_register_then_read_back(client: FlaskClient) -> None:
    created = register(client)
    assert created.status_code == 201
    body = created.json
    assert body is not None
    assert body["email"] == "ada@example.com"
    assert "password" not in body
    assert "password_hash" not in body
    read = client.get(f"/api/v1/users/{body['id']}")
    assert read.status_code == 200
    assert read.json == body


def test_duplicate_email_is_409_case_insensitively(client: FlaskClient) -> None:
    assert register(client).status_code == 201
    duplicate = register(client, email="ADA@example.COM")
    assert duplicate.status_code == 409
    assert duplicate.mimetype == "application/problem+json"
    assert duplicate.json is not None
    assert duplicate.json["errors"][0]["field"] == "email"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"email": 42}, "email"),
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


def test_reads_fall_back_to_postgres_when_redis_is_down(
    client: FlaskClient, make_app: AppFactory, dead_redis_url: str
) -> None:
    created = register(client).json
    assert created is not None
    without_redis = make_app(redis_url=dead_redis_url)
    read = without_redis.test_client().get(f"/api/v1/users/{created['id']}")
    assert read.status_code == 200
    assert read.json == created
