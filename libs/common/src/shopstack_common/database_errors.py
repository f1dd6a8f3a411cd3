"""Which database errors mean "not now" rather than "wrong".

PostgreSQL down, unreachable, out of connections, restarting, or cancelling a statement at
its timeout are conditions a client can retry: every service that owns a schema answers them
as 503 ``database-unavailable`` with ``Retry-After``. Anything else (a constraint, a bad
query) stays an error of its own, or a 500: a bug to fix, not an outage to wait out.

Framework-free and driver-agnostic: it reads what SQLAlchemy wraps (psycopg, asyncpg).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shopstack_common.problems import DATABASE_UNAVAILABLE, ProblemError

# SQLSTATE classes and codes that mean "not now" rather than "wrong".
_RETRYABLE_CLASSES = ("08", "53", "57P")  # connection, resources, operator intervention
_RETRYABLE_CODES = frozenset({"57014", "40001", "40P01", "55P03"})
# (statement timeout, serialization failure, deadlock, lock not available)

# The exception types a framework hands to ``is_retryable``: what SQLAlchemy raises for the
# database, its pool's timeout, and the socket errors a driver lets through unwrapped.
DATABASE_ERROR_TYPES: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
)
RETRY_AFTER_SECONDS = 1
# The BurstLogger key of "the database cannot answer": its first line, and the one that says
# the burst is over, share it.
BURST_KEY = "postgres"


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error raised through SQLAlchemy, if it has one."""
    code = getattr(getattr(error, "orig", None), "sqlstate", None)
    return code if isinstance(code, str) else None


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, PoolTimeoutError | OSError | TimeoutError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = sqlstate(error)
    if code is not None:
        return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_CLASSES)
    # No SQLSTATE: the server never answered. Refused, reset and unreachable connections
    # surface as socket errors (asyncpg) or as the driver's OperationalError (psycopg).
    return isinstance(error, SQLAlchemyOperationalError) or isinstance(
        error.orig, OSError | TimeoutError
    )


def database_unavailable() -> ProblemError:
    return ProblemError(
        DATABASE_UNAVAILABLE,
        "The database could not answer; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
