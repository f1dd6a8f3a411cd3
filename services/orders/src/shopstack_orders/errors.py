"""A database that cannot answer is a 503 problem, never a stack trace.

What counts as "cannot answer" is decided once for the platform
(``shopstack_common.database_errors``); anything else stays a 500 (a bug to fix).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from shopstack_common.database_errors import (
    BURST_KEY,
    DATABASE_ERROR_TYPES,
    database_unavailable,
    is_retryable,
)
from shopstack_common.fastapi_adapter import problem_response
from shopstack_orders.deps import resources_of


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    if not is_retryable(exc):
        raise exc
    resources_of(request.app).burst_log.warning(
        BURST_KEY, "PostgreSQL could not serve a request: %r", exc
    )
    return problem_response(database_unavailable())


def install_database_handlers(app: FastAPI) -> None:
    for error_type in DATABASE_ERROR_TYPES:
        app.add_exception_handler(error_type, _database_unavailable)
