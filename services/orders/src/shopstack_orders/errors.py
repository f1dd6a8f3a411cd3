"""A database that cannot answer is a 503 problem, never a stack trace.

PostgreSQL being down, unreachable, out of connections, or cancelling a statement at its
timeout are conditions a client can retry; anything else stays a 500 (a bug to fix).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shopstack_common.fastapi_support import problem_response
from shopstack_common.logs import BurstLogger

logger = logging.getLogger(__name__)

# SQLSTATE classes and codes that mean "not now" rather than "wrong".
_RETRYABLE_CLASSES = ("08", "53", "57P")  # connection, resources, operator intervention
_RETRYABLE_CODES = {"57014", "40001", "40P01", "55P03"}  # timeout, serialization, deadlock, lock


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error raised through SQLAlchemy, if it has one."""
    original = getattr(error, "orig", None)
    code = getattr(original, "sqlstate", None)
    return code if isinstance(code, str) else None


def is_retryable(error: BaseException) -> bool:
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


def install_database_handlers(app: FastAPI, burst_log: BurstLogger) -> None:
    async def database_unavailable(_: Request, exc: Exception) -> Response:
        if not is_retryable(exc):
            raise exc
        burst_log.warning("postgres", "PostgreSQL could not serve a request: %r", exc)
        return problem_response(
            503,
            slug="database-unavailable",
            title="Service unavailable",
            detail="The database could not answer; try again shortly.",
            headers={"Retry-After": "1"},
        )

    for error_type in (DBAPIError, PoolTimeoutError, OSError, TimeoutError):
        app.add_exception_handler(error_type, database_unavailable)
