from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from shopstack_users.app import create_app
from shopstack_users.config import UsersSettings

AppFactory = Callable[..., Flask]


def test_healthz_needs_no_dependencies() -> None:
    settings = UsersSettings(
        environment="test",  # type: ignore[arg-type]
        database_url="postgresql://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
    )
    client = create_app(settings).test_client()
    response = client.get("/healthz")
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


def test_openapi_documents_every_route(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert spec is not None
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/token", "post"),
        ("/api/v1/auth/revoke", "post"),
        ("/.well-known/jwks.json", "get"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/users/me", "patch"),
        ("/api/v1/users", "get"),
        ("/api/v1/users/{user_id}", "get"),
        ("/api/v1/users/{user_id}", "patch"),
        ("/api/v1/users/{user_id}", "delete"),
        ("/api/v1/users/{user_id}/roles", "put"),
    ]:
        assert method in paths[path], (method, path)
    token_body = paths["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in token_body
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
