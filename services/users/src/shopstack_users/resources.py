"""What the users service holds while it runs: the database engine and its sessions, Redis,
the signing keys, the password hasher, the login throttle and the console's orders client.
Opened once per app (per gunicorn worker) in ``create_app``, closed in ``close``; the app
keeps it as its one extension entry, read with ``resources()``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.backoff import BackOff
from shopstack_common.database import InstrumentedQueuePool, trace_statements
from shopstack_common.database_errors import BURST_KEY
from shopstack_common.health import SyncCheck
from shopstack_common.logs import BurstLogger
from shopstack_common.settings import sqlalchemy_url
from shopstack_users.best_effort_redis import BestEffortRedis
from shopstack_users.config import UsersSettings
from shopstack_users.console.orders_api import OrdersApi, client_credentials_token
from shopstack_users.keys import KeyRing
from shopstack_users.passwords import Passwords, make_hasher
from shopstack_users.throttle import LoginThrottle
from shopstack_users.tokens.service import Issuer

EXTENSION_KEY = "shopstack_users"

logger = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: UsersSettings
    engine: Engine
    # Service functions open their unit of work with ``sessions.begin()``.
    sessions: sessionmaker[Session]
    redis: BestEffortRedis
    keys: KeyRing
    passwords: Passwords
    login_throttle: LoginThrottle
    # "PostgreSQL cannot answer" is logged here once per burst, and its end once.
    database_log: BurstLogger
    # The admin console's way to a user's orders.
    orders_api: OrdersApi

    @classmethod
    def open(cls, settings: UsersSettings) -> Resources:
        """Build everything; nothing connects yet (the pools connect on first use), so a
        service whose dependencies are down still starts and says so on /readyz. Signing
        keys that cannot be read raise ``SigningKeyError`` here."""
        keys = KeyRing.from_settings(settings)
        passwords = Passwords(make_hasher(settings))
        engine = create_engine(
            sqlalchemy_url(settings.database_url, "psycopg"),
            poolclass=InstrumentedQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": settings.db_connect_timeout_seconds,
                "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
            },
        )
        trace_statements(engine)
        database_log = BurstLogger(logger, quiet_seconds=settings.fallback_log_quiet_seconds)

        @event.listens_for(engine, "checkout")
        def _database_answers(*_: Any) -> None:
            # A connection was handed out (pre-pinged): an outage, if there was one, is over.
            database_log.recovered(BURST_KEY, "PostgreSQL answers again")

        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            health_check_interval=30,
            decode_responses=True,
            # The back-off decides when to try again; the client's own retries would multiply
            # the timeout a hung Redis costs the request that meets it.
            retry=Retry(NoBackoff(), 0),
        )
        best_effort = BestEffortRedis(
            client,
            BurstLogger(logger, quiet_seconds=settings.fallback_log_quiet_seconds),
            BackOff(settings.redis_retry_after_seconds),
        )
        sessions = sessionmaker(engine, expire_on_commit=False)
        login_throttle = LoginThrottle(
            redis=best_effort,
            passwords=passwords,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_failure_window_seconds,
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=best_effort,
            keys=keys,
            passwords=passwords,
            login_throttle=login_throttle,
            database_log=database_log,
            orders_api=_orders_api(settings, sessions, keys, passwords, login_throttle),
        )

    def close(self) -> None:
        """Release the pooled connections (tests and the CLI create short-lived apps)."""
        self.engine.dispose()
        self.redis.client.close()
        self.orders_api.close()

    def readiness_checks(self) -> Mapping[str, SyncCheck]:
        return {"postgres": self._ping_postgres, "redis": self.redis.client.ping}

    def _ping_postgres(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def install(self, app: Flask) -> None:
        app.extensions[EXTENSION_KEY] = self


def resources(app: Flask | None = None) -> Resources:
    """The resources of ``app``, by default the app handling the current request or command."""
    found: Resources = (app or current_app).extensions[EXTENSION_KEY]
    return found


def _orders_api(
    settings: UsersSettings,
    sessions: sessionmaker[Session],
    keys: KeyRing,
    passwords: Passwords,
    login_throttle: LoginThrottle,
) -> OrdersApi:
    http = None
    if settings.console_orders_api_url:
        http = httpx.Client(
            base_url=settings.console_orders_api_url,
            timeout=settings.console_orders_timeout_seconds,
        )
    issue_token = None
    if settings.console_client_secret is not None:
        issue_token = client_credentials_token(
            sessions=sessions,
            issuer=Issuer(
                settings=settings, keys=keys, passwords=passwords, throttle=login_throttle
            ),
            client_id=settings.console_client_id,
            client_secret=settings.console_client_secret.get_secret_value(),
        )
    return OrdersApi(
        http=http,
        issue_token=issue_token,
        burst_log=BurstLogger(logger, quiet_seconds=settings.fallback_log_quiet_seconds),
    )
