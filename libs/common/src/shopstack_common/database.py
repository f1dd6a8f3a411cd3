"""What every database engine of the platform reports about itself: its pool's connections, the
wait for one and the timeouts (``shopstack_db_pool_*``), and a span per statement.

users (sync, psycopg) and orders (asyncio, asyncpg) pass ``InstrumentedQueuePool`` or
``InstrumentedAsyncAdaptedQueuePool`` as ``poolclass=``. The pool publishes its counts where
a connection leaves it and where one comes back (``_do_get`` and ``_do_return_conn``, the two
hooks SQLAlchemy's pool implementations are built on), so the gauges never lag a checkout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
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

if TYPE_CHECKING:
    # Not at run time: sqlalchemy.ext.asyncio needs greenlet, which users (sync) does not have.
    from sqlalchemy.ext.asyncio import AsyncEngine


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


# -- spans -----------------------------------------------------------------------------------
# opentelemetry-instrumentation-sqlalchemy supports SQLAlchemy below 2.1 only; these hooks on
# the engine make the same CLIENT spans, with the stable database conventions. An async
# engine's statements run in its sync engine, inside a greenlet that carries the caller's
# context, so a statement's span is a child of the request's.

_SPAN_KEY = "_shopstack_span"
_tracer = trace.get_tracer(__name__)


def trace_statements(engine: Engine | AsyncEngine) -> None:
    """A CLIENT span for every statement ``engine`` runs (``db.query.text`` holds the SQL with
    its placeholders, never the values)."""
    sync_engine = engine if isinstance(engine, Engine) else engine.sync_engine
    url = sync_engine.url
    common: dict[str, str | int] = {"db.system.name": "postgresql"}
    if url.database:
        common["db.namespace"] = url.database
    if url.host:
        common["server.address"] = url.host
    if url.port:
        common["server.port"] = url.port

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        operation = statement.split(None, 1)[0].upper() if statement.strip() else "STATEMENT"
        name = f"{operation} {common['db.namespace']}" if "db.namespace" in common else operation
        span = _tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={**common, "db.operation.name": operation, "db.query.text": statement},
        )
        if context is not None:
            setattr(context, _SPAN_KEY, span)

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(*args: Any) -> None:
        context = args[4]  # (conn, cursor, statement, parameters, context, executemany)
        span = getattr(context, _SPAN_KEY, None)
        if span is not None:
            span.end()
            setattr(context, _SPAN_KEY, None)

    @event.listens_for(sync_engine, "handle_error")
    def _failed(exception_context: ExceptionContext) -> None:
        span = getattr(exception_context.execution_context, _SPAN_KEY, None)
        if span is None:
            return
        error = exception_context.original_exception
        span.record_exception(error)
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()
        setattr(exception_context.execution_context, _SPAN_KEY, None)
