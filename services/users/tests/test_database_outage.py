"""PostgreSQL unreachable or stopped: every route answers 503 ``database-unavailable`` with
Retry-After (never a 500), the outage is logged once per burst and its end once, and the
service serves again as soon as PostgreSQL is back (no restart)."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shopstack_common.migrations import upgrade
from shopstack_common.settings import sqlalchemy_url
from shopstack_devstack.ports import free_port
from shopstack_devstack.postgres import EmbeddedPostgres
from shopstack_users.cli import MIGRATIONS
from shopstack_users.models import SCHEMA

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"
USERS = "/api/v1/users"
ADMIN_ID = "00000000-0000-4000-8000-000000000001"
NEW_ACCOUNT = {"email": "eve@example.com", "password": "correct horse battery", "full_name": "E"}


def register(client: FlaskClient) -> TestResponse:
    return client.post(REGISTER, json=NEW_ACCOUNT)


def password_grant(client: FlaskClient) -> TestResponse:
    return client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": NEW_ACCOUNT["email"],
            "password": NEW_ACCOUNT["password"],
        },
    )


def list_users(client: FlaskClient, api: UsersApi) -> TestResponse:
    return client.get(USERS, headers=api.as_user(ADMIN_ID, "admin"))


def assert_database_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    problem = response.get_json()
    assert problem["type"] == "/problems/database-unavailable"
    assert problem["request_id"] == response.headers["X-Request-ID"]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def count(self, text: str) -> int:
        return sum(text in message for message in self.messages)


@pytest.fixture
def lines() -> Iterator[Lines]:
    """What the users service logs about PostgreSQL (the app sets logging up when it is made,
    so listen on the logger itself)."""
    handler = Lines()
    logger = logging.getLogger("shopstack_users.resources")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("route", ["register", "password grant", "admin user list"])
def test_an_unreachable_database_is_a_503_on_every_route(
    make_app: AppFactory, dead_database_url: str, api: UsersApi, route: str
) -> None:
    client = make_app(database_url=dead_database_url).test_client()
    call = {
        "register": lambda: register(client),
        "password grant": lambda: password_grant(client),
        "admin user list": lambda: list_users(client, api),
    }[route]
    assert_database_unavailable(call())
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["postgres"]["status"] == "fail"


@dataclass
class PrivatePostgres:
    """A PostgreSQL of this test's own, so it can be stopped and started again."""

    server: EmbeddedPostgres
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.server.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.server.run_as_uid,
            start_new_session=True,
        )
        process = self.process
        self.server.wait_ready(60, alive=lambda: process.poll() is None)

    def stop(self) -> None:
        """A fast shutdown, as when the server is restarted: connections are cut."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres", free_port(), durable=False)
    server.initialise()
    postgres = PrivatePostgres(server)
    postgres.start()
    try:
        server.ensure_database()
        upgrade(MIGRATIONS, sqlalchemy_url(server.url, "psycopg"), SCHEMA)
        yield postgres
    finally:
        postgres.stop()


def test_a_stopped_database_is_a_503_and_its_return_needs_no_restart(
    make_app: AppFactory, private_postgres: PrivatePostgres, api: UsersApi, lines: Lines
) -> None:
    client = make_app(database_url=private_postgres.server.url).test_client()
    assert register(client).status_code == 201
    assert password_grant(client).status_code == 200  # the pool now holds live connections

    private_postgres.stop()
    for _ in range(3):
        assert_database_unavailable(register(client))
        assert_database_unavailable(password_grant(client))
        assert_database_unavailable(list_users(client, api))
    assert client.get("/readyz").status_code == 503
    # Nine failed requests, one line (BurstLogger: the next says how many were left out).
    assert lines.count("PostgreSQL could not serve") == 1

    private_postgres.start()
    assert password_grant(client).status_code == 200
    listed = list_users(client, api)
    assert listed.status_code == 200
    assert [user["email"] for user in listed.get_json()["items"]] == [NEW_ACCOUNT["email"]]
    assert lines.count("PostgreSQL answers again") == 1
