"""What every database engine of the platform reports about itself: its pool's connections, the
wait for one and the timeouts (``shopstack_db_pool_*``).

users (sync, psycopg) and orders (asyncio, asyncpg) pass ``InstrumentedQueuePool`` or
``InstrumentedAsyncAdaptedQueuePool`` as ``poolclass=``. The pool publishes its counts where
a connection leaves it and where one comes back (``_do_get`` and ``_do_return_conn``, the two
hooks SQLAlchemy's pool implementations are built on), so the gauges never lag a checkout.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, QueuePool

from shopstack_common.metrics import (
    DB_POOL_IDLE,
    DB_POOL_IN_USE,
    DB_POOL_LIMIT,
    DB_POOL_OVERFLOW,
    DB_POOL_TIMEOUTS,
    DB_POOL_WAIT,
)


class InstrumentedQueuePool(QueuePool):
    """A ``QueuePool`` that exports its state. One per process: the gauges are the process's."""

    # Log as the pool it extends: SQLAlchemy keeps its own loggers at WARNING.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.QueuePool"

    def __init__(self, creator: Any, pool_size: int = 5, max_overflow: int = 10, **kw: Any):
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, **kw)
        DB_POOL_LIMIT.set(pool_size + max(max_overflow, 0))
        self._publish()

    def _do_get(self) -> ConnectionPoolEntry:
        # A free connection, or a new one opened within the overflow, or a wait for either.
        started = time.perf_counter()
        try:
            record = super()._do_get()
        except PoolTimeoutError:
            DB_POOL_TIMEOUTS.inc()
            raise
        finally:
            DB_POOL_WAIT.observe(time.perf_counter() - started)
            self._publish()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        self._publish()

    def dispose(self) -> None:
        super().dispose()
        self._publish()

    def _publish(self) -> None:
        DB_POOL_IN_USE.set(self.checkedout())
        DB_POOL_IDLE.set(self.checkedin())
        # overflow() counts down from -pool_size while the pool fills; beyond it, the extra.
        DB_POOL_OVERFLOW.set(max(self.overflow(), 0))


class InstrumentedAsyncAdaptedQueuePool(InstrumentedQueuePool, AsyncAdaptedQueuePool):
    """The same for an asyncio engine (``create_async_engine``)."""

    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"
