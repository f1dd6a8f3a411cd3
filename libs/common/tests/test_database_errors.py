"""Which database failures are "not now" (a 503 to retry) and which are errors of their own.
The errors are SQLAlchemy's own, wrapping driver errors shaped as psycopg's and asyncpg's."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from shopstack_common.database_errors import database_unavailable, is_retryable


class DriverError(Exception):
    """A DBAPI error as a driver raises it: with the server's SQLSTATE once it answered."""

    def __init__(self, sqlstate: str | None = None) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        # Refused or reset before the server answered: psycopg's OperationalError, no SQLSTATE.
        (exc.OperationalError("SELECT 1", {}, DriverError()), True),
        # asyncpg lets the socket error through as the original.
        (exc.DBAPIError("SELECT 1", {}, ConnectionRefusedError()), True),
        (exc.TimeoutError("QueuePool limit reached"), True),
        (ConnectionResetError(), True),
        (exc.OperationalError("SELECT 1", {}, DriverError("57P01")), True),  # admin shutdown
        (exc.OperationalError("SELECT 1", {}, DriverError("08006")), True),  # connection failure
        (exc.OperationalError("SELECT 1", {}, DriverError("53300")), True),  # too many clients
        (exc.OperationalError("SELECT 1", {}, DriverError("57014")), True),  # statement timeout
        (exc.DBAPIError("SELECT 1", {}, DriverError("40001")), True),  # serialization failure
        (exc.DBAPIError("SELECT 1", {}, DriverError("40P01")), True),  # deadlock
        (exc.IntegrityError("INSERT", {}, DriverError("23505")), False),  # unique violation
        (exc.ProgrammingError("SELEC", {}, DriverError("42601")), False),  # syntax error
        # psycopg refusing a NUL character: no SQLSTATE, but not a connection problem.
        (exc.DataError("INSERT", {}, DriverError()), False),
        (ValueError("not the database"), False),
    ],
)
def test_retryable_database_errors(error: Exception, retryable: bool) -> None:
    assert is_retryable(error) is retryable


def test_an_invalidated_connection_is_retryable() -> None:
    error = exc.DBAPIError("SELECT 1", {}, DriverError("XX000"), connection_invalidated=True)
    assert is_retryable(error)


def test_the_problem_says_when_to_retry() -> None:
    problem = database_unavailable()
    assert problem.status == 503
    assert problem.problem.slug == "database-unavailable"
    assert problem.headers == {"Retry-After": "1"}
