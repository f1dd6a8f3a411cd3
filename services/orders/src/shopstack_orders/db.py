"""The async engine and its sessions.

Sessions do not begin transactions by themselves (``autobegin=False``): every statement runs
inside an ``async with session.begin():`` that a service function opened, so the unit of work
is always visible where it is decided, and a route cannot commit by accident.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shopstack_common.database import InstrumentedAsyncAdaptedQueuePool, trace_statements
from shopstack_common.settings import sqlalchemy_url
from shopstack_orders.config import OrdersSettings

LOCK_NOT_AVAILABLE = "55P03"


def create_engine(settings: OrdersSettings) -> AsyncEngine:
    engine = create_async_engine(
        sqlalchemy_url(settings.database_url, "asyncpg"),
        poolclass=InstrumentedAsyncAdaptedQueuePool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)},
        },
    )
    trace_statements(engine)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autobegin=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
