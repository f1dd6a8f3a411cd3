"""Extensions, created once at import time and bound to an app with ``init_app``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.settings import sqlalchemy_url
from shopstack_users.config import UsersSettings

_EXTENSION_KEY = "shopstack_users"


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
    """The Redis client. Redis is an optimisation here: callers treat its errors as misses."""

    def init_app(self, app: Flask, settings: UsersSettings) -> None:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            health_check_interval=30,
            decode_responses=True,
        )
        app.extensions.setdefault(_EXTENSION_KEY, {})["redis"] = client

    @property
    def client(self) -> redis.Redis:
        client: redis.Redis = current_app.extensions[_EXTENSION_KEY]["redis"]
        return client

    def ping(self) -> Any:
        return self.client.ping()


db = Database()
cache = Cache()


def close_resources(app: Flask) -> None:
    """Release the app's pooled connections (tests and the CLI create short-lived apps)."""
    state = app.extensions.get(_EXTENSION_KEY, {})
    if "db" in state:
        state["db"][0].dispose()
    if "redis" in state:
        state["redis"].close()
