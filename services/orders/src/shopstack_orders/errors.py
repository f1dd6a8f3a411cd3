"""A database that cannot answer is a 503 problem, never a stack trace.

PostgreSQL being down, unreachable, out of connections, or cancelling a statement at its
timeout are conditions a client can retry (``db.is_retryable``); anything else stays a 500
(a bug to fix).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shopstack_common.fastapi_adapter import problem_response
from shopstack_common.problems import DATABASE_UNAVAILABLE, ProblemError
from shopstack_orders.db import is_retryable
from shopstack_orders.deps import resources_of

RETRY_AFTER_SECONDS = 1


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    if not is_retryable(exc):
        raise exc
    resources_of(request.app).burst_log.warning(
        "postgres", "PostgreSQL could not serve a request: %r", exc
    )
    return problem_response(
        ProblemError(
            DATABASE_UNAVAILABLE,
            "The database could not answer; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    )


def install_database_handlers(app: FastAPI) -> None:
    for error_type in (DBAPIError, PoolTimeoutError, OSError, TimeoutError):
        app.add_exception_handler(error_type, _database_unavailable)
