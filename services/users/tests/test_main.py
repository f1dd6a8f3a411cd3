"""What ``create_app`` wires: the ops routes, request ids, metrics, problems for unknown
routes, no redirects, and the refusal to start without a signing key."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopstack_users.config import UsersSettings
from shopstack_users.keys import SigningKeyError
from shopstack_users.main import create_app
from shopstack_users.resources import resources

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi


def test_healthz_needs_no_dependencies() -> None:
    settings = UsersSettings(
        environment="test",  # type: ignore[arg-type]
        database_url="postgresql://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
    )
    app = create_app(settings)
    try:
        response = app.test_client().get("/healthz")
    finally:
        resources(app).close()
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_answers_when_postgres_and_redis_do(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json is not None
    assert set(response.json["checks"]) == {"postgres", "redis"}


def test_readyz_names_the_dead_dependency(make_app: AppFactory, dead_redis_url: str) -> None:
    app = make_app(redis_url=dead_redis_url)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body is not None
    assert body["checks"]["postgres"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "fail"
    assert "redis" in body["detail"]


def test_metrics_count_requests_by_route_template(users_app: Flask) -> None:
    client = users_app.test_client()
    client.get("/api/v1/users/00000000-0000-0000-0000-000000000001")
    client.get("/api/v1/users/00000000-0000-0000-0000-000000000002")
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'shopstack_http_requests_total{method="GET",route="/api/v1/users/<uuid:user_id>",status="4xx"}'
        in text
    )
    assert "00000000-0000-0000-0000-000000000001" not in text


def test_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_unknown_route_is_problem_json(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["request_id"] == response.headers["X-Request-ID"]


def test_without_a_key_production_does_not_start(database_url: str, redis_url: str) -> None:
    settings = UsersSettings(
        environment="production",  # type: ignore[arg-type]
        database_url=database_url,
        redis_url=redis_url,
    )
    with pytest.raises(SigningKeyError, match="JWT_SIGNING_KEYS_DIR"):
        create_app(settings)


def variants(rule: str) -> list[str]:
    """The rule's path with a trailing slash, without one, and with a doubled slash."""
    path = rule.replace("<uuid:user_id>", str(uuid.uuid4()))
    stem = path.rstrip("/")
    doubled = "/" + stem[1:].replace("/", "//", 1) if stem.count("/") > 1 else stem + "//"
    return [stem + "/", stem, doubled, stem + "//"]


def test_no_path_is_answered_with_a_redirect(users_app: Flask, api: UsersApi) -> None:
    """A redirect would name the service's own address, which clients cannot reach (and
    must not learn) behind the gateway. Every route, every method, slashes added or doubled;
    the console's redirects are relative paths."""
    admin = api.admin()
    client = users_app.test_client()
    headers = api.as_user(admin["id"], "admin", "customer")
    answered = 0
    for rule in users_app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for path in variants(rule.rule):
                response = client.open(path, method=method, headers=headers, json={})
                if rule.rule.startswith("/admin"):
                    # The console's pages redirect (to sign in, after a form), always to a
                    # path of the console: relative, naming no address.
                    location = response.headers.get("Location", "/admin")
                    assert location.startswith("/admin"), (method, path, location)
                else:
                    assert not 300 <= response.status_code < 400, (method, path)
                    assert "Location" not in response.headers, (method, path)
                answered += 1
    assert answered > 40


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/users/me/", 200), ("/api/v1/users/", 200), ("/api/v1//users/me", 404)],
)
def test_a_trailing_slash_is_the_same_resource_and_a_doubled_one_is_none(
    client: FlaskClient, api: UsersApi, path: str, status: int
) -> None:
    admin = api.admin()
    response = client.get(path, headers=api.as_user(admin["id"], "admin"))
    assert response.status_code == status
    if status == 404:
        assert api.body(response)["type"] == "/problems/not-found"


def test_metrics_leave_the_api_port_when_they_have_their_own(make_app: AppFactory) -> None:
    """With METRICS_PORT set, gunicorn serves /metrics there (never routed by an Ingress)."""
    client = make_app(metrics_port=9464).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/readyz").status_code == 200
