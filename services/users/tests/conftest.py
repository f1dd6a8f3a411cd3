from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shopstack_devstack.ports import free_port
from shopstack_users.app import create_app
from shopstack_users.config import UsersSettings
from shopstack_users.extensions import close_resources

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(database_url: str, redis_url: str) -> Iterator[AppFactory]:
    """Build apps against the test servers (override any setting); all closed afterwards."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        values: dict[str, object] = {
            "environment": "test", "database_url": database_url, "redis_url": redis_url,
        }  # fmt: skip
        app = create_app(UsersSettings(**(values | overrides)))  # type: ignore[arg-type]
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
