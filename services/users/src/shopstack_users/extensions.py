"""Extensions, created once at import time and bound to an app with ``init_app``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import DEPENDENCY_FALLBACKS
from shopstack_common.settings import sqlalchemy_url
from shopstack_users.config import UsersSettings
from shopstack_users.keys import KeyRing
from shopstack_users.passwords import Passwords, make_hasher

_EXTENSION_KEY = "shopstack_users"

logger = logging.getLogger(__name__)


class Database:
    """One engine per app and one session per request (or per CLI command)."""

    def init_app(self, app: Flask, settings: UsersSettings) -> None:
        engine = create_engine(
            sqlalchemy_url(settings.database_url, "psycopg"),
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout_seconds,
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": settings.db_connect_timeout_seconds,
                "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
            },
        )
        factory = sessionmaker(engine, expire_on_commit=False)
        app.extensions.setdefault(_EXTENSION_KEY, {})["db"] = (engine, factory)
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def _state() -> tuple[Engine, sessionmaker[Session]]:
        state: tuple[Engine, sessionmaker[Session]] = current_app.extensions[_EXTENSION_KEY]["db"]
        return state

    @property
    def engine(self) -> Engine:
        return self._state()[0]

    @property
    def session(self) -> Session:
        """The session of the current app context, opened on first use."""
        if "db_session" not in g:
            g.db_session = self._state()[1]()
        session: Session = g.db_session
        return session

    @contextmanager
    def new_session(self) -> Iterator[Session]:
        with self._state()[1]() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @staticmethod
    def _close_session(_: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.close()


class Cache:
    """The Redis client. Redis is an optimisation here: callers treat its errors as misses
    and report them with ``failed``, which counts every one and logs once per burst."""

    def init_app(self, app: Flask, settings: UsersSettings) -> None:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            health_check_interval=30,
            decode_responses=True,
        )
        state = app.extensions.setdefault(_EXTENSION_KEY, {})
        state["redis"] = client
        state["redis_burst"] = BurstLogger(
            logger, quiet_seconds=settings.fallback_log_quiet_seconds
        )

    @property
    def client(self) -> redis.Redis:
        client: redis.Redis = current_app.extensions[_EXTENSION_KEY]["redis"]
        return client

    def failed(self, operation: str, error: Exception) -> None:
        """Redis did not answer ``operation``; the caller goes on without it."""
        DEPENDENCY_FALLBACKS.labels("redis", operation).inc()
        burst: BurstLogger = current_app.extensions[_EXTENSION_KEY]["redis_burst"]
        burst.warning(
            "redis",
            "Redis unavailable, going on without it (%s): %s",
            operation,
            error,
            extra={"operation": operation},
        )

    def ping(self) -> Any:
        return self.client.ping()


class Security:
    """The signing keys and the password hasher, built once per app from its settings."""

    def init_app(self, app: Flask, settings: UsersSettings) -> None:
        state = app.extensions.setdefault(_EXTENSION_KEY, {})
        state["keys"] = KeyRing.from_settings(settings)
        state["passwords"] = Passwords(make_hasher(settings))

    @property
    def keys(self) -> KeyRing:
        keys: KeyRing = current_app.extensions[_EXTENSION_KEY]["keys"]
        return keys

    @property
    def passwords(self) -> Passwords:
        passwords: Passwords = current_app.extensions[_EXTENSION_KEY]["passwords"]
        return passwords


def settings() -> UsersSettings:
    """The current app's settings."""
    current: UsersSettings = current_app.config["SHOPSTACK_SETTINGS"]
    return current


db = Database()
cache = Cache()
security = Security()


def close_resources(app: Flask) -> None:
    """Release the app's pooled connections (tests and the CLI create short-lived apps)."""
    state = app.extensions.get(_EXTENSION_KEY, {})
    if "db" in state:
        state["db"][0].dispose()
    if "redis" in state:
        state["redis"].close()
