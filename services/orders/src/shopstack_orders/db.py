"""The async engine, its sessions, and what a driver error means for a client.

Sessions do not begin transactions by themselves (``autobegin=False``): every statement runs
inside an ``async with session.begin():`` that a service function opened, so the unit of work
is always visible where it is decided, and a route cannot commit by accident.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shopstack_common.settings import sqlalchemy_url
from shopstack_orders.config import OrdersSettings

# SQLSTATE classes and codes that mean "not now" rather than "wrong".
_RETRYABLE_CLASSES = ("08", "53", "57P")  # connection, resources, operator intervention
_RETRYABLE_CODES = {"57014", "40001", "40P01", "55P03"}  # timeout, serialization, deadlock, lock
LOCK_NOT_AVAILABLE = "55P03"


def create_engine(settings: OrdersSettings) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(settings.database_url, "asyncpg"),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)},
        },
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autobegin=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error raised through SQLAlchemy, if it has one."""
    original = getattr(error, "orig", None)
    code = getattr(original, "sqlstate", None)
    return code if isinstance(code, str) else None


def is_retryable(error: BaseException) -> bool:
    """PostgreSQL down, unreachable, out of connections, or cancelling a statement at its
    timeout: conditions a client can retry. Anything else is a bug to fix."""
    if isinstance(error, (PoolTimeoutError, OSError, TimeoutError)):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        code = sqlstate(error)
        if code is None:
            # Errors raised before the server answered (refused, reset) carry no SQLSTATE.
            return isinstance(error.orig, (OSError, TimeoutError))
        return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_CLASSES)
    return False
