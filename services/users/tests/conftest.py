import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopstack_common.identity import Identity
from shopstack_devstack.ports import free_port
from shopstack_users.app import create_app
from shopstack_users.config import UsersSettings
from shopstack_users.extensions import close_resources
from shopstack_users.keys import write_new_key

AppFactory = Callable[..., Flask]

OLD_KID = "2026-01-01"
NEW_KID = "2026-06-01"
PASSWORD = "correct horse battery"


class ClosingClient(FlaskClient):
    """A test client that closes every response's body iterator, as a WSGI server does.

    Werkzeug's client leaves it open unless asked to buffer; the tracing middleware detaches
    its context only on close, so an unclosed body would leave this test's span (and request
    context) current in whatever test runs next on this thread."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
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

    def make(**overrides: object) -> Flask:
        values: dict[str, object] = {
            "environment": "test", "database_url": database_url, "redis_url": redis_url,
            "jwt_signing_keys_dir": key_dirs["old"],
        }  # fmt: skip
        app = create_app(UsersSettings(**(values | overrides)))  # type: ignore[arg-type]
        app.test_client_class = ClosingClient
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_resources(app)


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


class UsersApi:
    """Short ways to do the common steps against one app."""

    password = PASSWORD
    as_user = staticmethod(as_user)
    as_client = staticmethod(as_client)

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def register(self, email: str = "ada@example.com", **overrides: Any) -> dict[str, Any]:
        payload = {"email": email, "password": PASSWORD, "full_name": "Ada Lovelace", **overrides}
        response = self.client.post("/api/v1/auth/register", json=payload)
        assert response.status_code == 201, response.get_data(as_text=True)
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        return body

    def admin(self, email: str = "root@example.com") -> dict[str, Any]:
        """A registered user with the admin role (set in the database, as create-admin does)."""
        user = self.register(email, full_name="Root")
        from shopstack_users.extensions import db
        from shopstack_users.models import User

        with self.client.application.app_context(), db.new_session() as session:
            row = session.get(User, uuid.UUID(user["id"]))
            assert row is not None
            row.roles = ["admin", "customer"]
            session.commit()
        return user

    def token(
        self,
        email: str = "ada@example.com",
        password: str = PASSWORD,
        address: str = "203.0.113.7",
        **extra: str,
    ) -> Any:
        """A password grant from ``address`` (NGINX appends the client's address to
        X-Forwarded-For, the gateway appends NGINX's)."""
        return self.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password, **extra},
            headers={"X-Forwarded-For": f"{address}, 10.0.0.2"},
        )

    def form(self, path: str, data: dict[str, str], **kwargs: Any) -> Any:
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def api(client: FlaskClient) -> UsersApi:
    return UsersApi(client)
