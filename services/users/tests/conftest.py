"""Fixtures of the users service's tests: apps on the real PostgreSQL and Redis of the test
backend, a client that closes bodies as a WSGI server does, and the headers the gateway
sends for a verified token."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shopstack_common.identity import Identity, is_identity_header
from shopstack_common.wsgi import StartResponse
from shopstack_devstack.ports import free_port
from shopstack_users.accounts.models import User
from shopstack_users.config import UsersSettings
from shopstack_users.keys import ALGORITHM, write_new_key
from shopstack_users.main import create_app
from shopstack_users.resources import resources

OLD_KID = "2026-01-01"
NEW_KID = "2026-06-01"
PASSWORD = "correct horse battery"
TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"
# What NGINX saw as the client, as the gateway hands it on (the last X-Forwarded-For entry).
CLIENT_ADDRESS = "203.0.113.7"


class AppFactory(Protocol):
    def __call__(self, **overrides: Any) -> Flask: ...


class ClosingClient(FlaskClient):
    """A test client that closes every response's body iterator, as a WSGI server does.

    Werkzeug's client leaves it open unless asked to buffer; the tracing middleware detaches
    its context only on close, so an unclosed body would leave this test's span (and request
    context) current in whatever test runs next on this thread."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def key_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``old``: one key; ``rotated``: that key and a newer one (which signs)."""
    old = tmp_path_factory.mktemp("keys-old")
    rotated = tmp_path_factory.mktemp("keys-rotated")
    old_key = write_new_key(old, OLD_KID)
    (rotated / old_key.name).write_bytes(old_key.read_bytes())
    write_new_key(rotated, NEW_KID)
    return {"old": old, "rotated": rotated}


@pytest.fixture
def make_app(database_url: str, redis_url: str, key_dirs: dict[str, Path]) -> Iterator[AppFactory]:
    """Build apps against the test servers (override any setting); all closed afterwards."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": database_url,
            "redis_url": redis_url,
            "jwt_signing_keys_dir": key_dirs["old"],
        }
        app = create_app(UsersSettings(**(values | overrides)))
        app.test_client_class = ClosingClient
        apps.append(app)
        return app

    yield make
    for app in apps:
        resources(app).close()


@pytest.fixture
def users_app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(users_app: Flask) -> FlaskClient:
    return users_app.test_client()


@pytest.fixture
def dead_redis_url() -> str:
    """A Redis URL where nothing listens: the service must get by without it."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def dead_database_url() -> str:
    """A PostgreSQL URL where nothing listens: the service must answer 503, not crash."""
    return f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none"


def as_user(user_id: str | uuid.UUID, *roles: str) -> dict[str, str]:
    """The headers the gateway sets for a user's verified token."""
    return Identity(
        user_id=uuid.UUID(str(user_id)),
        client_id="shopstack-web",
        roles=frozenset(roles or ("customer",)),
        scopes=frozenset({"profile", "orders"}),
        token_id=uuid.uuid4().hex,
    ).to_headers()


def as_client(client_id: str, *scopes: str) -> dict[str, str]:
    """The headers the gateway sets for a service client's token."""
    return Identity(client_id=client_id, scopes=frozenset(scopes)).to_headers()


def body(response: TestResponse) -> Any:
    """The JSON body, which must be there."""
    parsed = response.get_json(silent=True)
    assert parsed is not None, response.get_data(as_text=True)
    return parsed


class UsersApi:
    """Short ways to do the common steps against one app, and the helpers tests share
    (test modules cannot import this one: they reach them through the ``api`` fixture)."""

    password = PASSWORD
    as_user = staticmethod(as_user)
    as_client = staticmethod(as_client)
    body = staticmethod(body)

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def register(self, email: str = "ada@example.com", **overrides: Any) -> dict[str, Any]:
        payload = {"email": email, "password": PASSWORD, "full_name": "Ada Lovelace", **overrides}
        response = self.client.post(REGISTER, json=payload)
        assert response.status_code == 201, response.get_data(as_text=True)
        created: dict[str, Any] = body(response)
        return created

    def admin(self, email: str = "root@example.com") -> dict[str, Any]:
        """A registered user with the admin role (set in the database, as create-admin does)."""
        user = self.register(email, full_name="Root")
        found = resources(self.client.application)
        with found.sessions.begin() as session:
            row = session.get(User, uuid.UUID(user["id"]))
            assert row is not None
            row.roles = ["admin", "customer"]
        return user

    def token(
        self,
        email: str = "ada@example.com",
        password: str = PASSWORD,
        address: str = CLIENT_ADDRESS,
        **extra: str,
    ) -> TestResponse:
        """A password grant from ``address``, as the gateway passes it on."""
        return self.client.post(
            TOKEN,
            data={"grant_type": "password", "username": email, "password": password, **extra},
            headers={"X-Forwarded-For": address},
        )

    def form(self, path: str, data: dict[str, str], **kwargs: Any) -> TestResponse:
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def api(client: FlaskClient) -> UsersApi:
    return UsersApi(client)


class GatewayEdge:
    """What the gateway does in front of the users service, as far as the service relies on
    it: client ``X-Shopstack-*`` headers are dropped, and a bearer token that the service's
    own keys verify becomes the identity headers the gateway sends."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        found = resources(app)
        self.keys = found.keys
        self.issuer = found.settings.jwt_issuer
        self.audience = found.settings.jwt_audience

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        for key in [k for k in environ if k.startswith("HTTP_")]:
            if is_identity_header(key[5:].replace("_", "-")):
                del environ[key]
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer":
            del environ["HTTP_AUTHORIZATION"]
            identity = self.verify(token.strip())
            if identity is not None:
                for name, value in identity.to_headers().items():
                    environ["HTTP_" + name.upper().replace("-", "_")] = value
        return self.app.wsgi_app(environ, start_response)

    def verify(self, token: str) -> Identity | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.keys.keys if k.kid == kid)
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
            )
        except (jwt.PyJWTError, StopIteration):
            return None
        user_id = None if claims["sub"] == claims["client_id"] else uuid.UUID(claims["sub"])
        return Identity(
            user_id=user_id,
            client_id=claims["client_id"],
            roles=frozenset(claims["roles"]),
            scopes=frozenset(claims["scope"].split()),
            token_id=claims["jti"],
        )


@pytest.fixture
def behind_gateway() -> type[GatewayEdge]:
    """``behind_gateway(app)``: the app as clients reach it through the gateway."""
    return GatewayEdge
