"""Idempotency-Key handling, after the IETF httpapi idempotency-key draft.

The key record and the work it guards commit in one transaction:

1. One ``INSERT ... ON CONFLICT`` claims ``(caller, key)`` with status ``in_flight``, under
   a short ``lock_timeout``. A record past its retention is taken over by the same statement.
2. The operation runs in the same transaction.
3. The record is updated to ``completed`` with the response, and everything commits.

So a key record exists exactly when its order (or cancellation) committed: no crash can
leave one without the other. What a concurrent request with the same key sees follows from
PostgreSQL's unique index: while the first transaction is open its uncommitted row blocks
the second insert; after ``lock_timeout`` the second gives up and is answered 409 (still in
flight). If the first commits within that time, the second finds the completed record and
replays it (same fingerprint) or is answered 422 (different payload). If the first fails,
its rollback removes the claim and the key is free again: only successful responses are
recorded, and a failed request, which changed nothing, may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import (
    Interval,
    Table,
    bindparam,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert, Update

from shopstack_common.built_once import built_once
from shopstack_common.database_errors import sqlstate
from shopstack_common.problems import (
    IDEMPOTENCY_KEY_IN_FLIGHT,
    IDEMPOTENCY_KEY_REUSED,
    ProblemError,
)
from shopstack_orders.db import LOCK_NOT_AVAILABLE
from shopstack_orders.idempotency.models import COMPLETED, IN_FLIGHT, IdempotencyKey
from shopstack_orders.idempotency.schemas import Outcome
from shopstack_orders.metrics import IDEMPOTENCY_CONFLICTS, IDEMPOTENT_REPLAYS

T = TypeVar("T", bound=BaseModel)

KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class IdempotentRequest:
    caller: str
    key: str
    operation: str
    fingerprint: str


@dataclass(frozen=True)
class IdempotencyPolicy:
    retention: timedelta
    lock_timeout_ms: int


def fingerprint(*, operation: str, payload: Any) -> str:
    """A digest of what the request asks for: the operation and its parsed payload, so the
    same request sent with other whitespace or key order still matches."""
    canonical = json.dumps(
        {"operation": operation, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_request(
    *, caller: str, key: str | None, operation: str, payload: Any
) -> IdempotentRequest | None:
    if key is None:
        return None
    return IdempotentRequest(
        caller=caller,
        key=key,
        operation=operation,
        fingerprint=fingerprint(operation=operation, payload=payload),
    )


def _in_flight() -> ProblemError:
    IDEMPOTENCY_CONFLICTS.labels("in_flight").inc()
    return ProblemError(
        IDEMPOTENCY_KEY_IN_FLIGHT,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        headers={"Retry-After": "1"},
    )


def _reused() -> ProblemError:
    IDEMPOTENCY_CONFLICTS.labels("payload_mismatch").inc()
    return ProblemError(
        IDEMPOTENCY_KEY_REUSED,
        "This Idempotency-Key was used for a different request; use a new key.",
        errors=[
            {
                "field": KEY_HEADER,
                "location": "header",
                "message": "already used with a different payload",
            }
        ],
    )


_KEYS = cast(Table, IdempotencyKey.__table__)


def _claim_statement() -> ReturningInsert[tuple[str]]:
    """One statement that claims a key and bounds how long it waits for a concurrent holder.

    The row comes from a SELECT that first sets ``lock_timeout`` for this transaction, so the
    limit is in force when the insert meets another transaction's uncommitted row for the
    same key. RETURNING, evaluated only once the row is in, sets it back for the rest of the
    transaction to the session's configured value (``set_config`` with NULL: what ``RESET``
    gives): the product row locks taken later in the transaction wait normally. When nothing
    is claimed the transaction only reads the record and ends. Both settings are local to the
    transaction, so the connection goes back to the pool as it came.
    """
    bounded = select(func.set_config("lock_timeout", bindparam("p_lock_timeout"), True)).subquery()
    columns = ["caller", "key", "fingerprint", "status", "created_at", "expires_at"]
    # The Core table, not the ORM entity: this is one statement, not an ORM bulk insert.
    statement = insert(_KEYS).from_select(
        columns,
        select(
            bindparam("p_caller"),
            bindparam("p_key"),
            bindparam("p_fingerprint"),
            literal(IN_FLIGHT),
            func.now(),
            func.now() + bindparam("p_retention", type_=Interval()),
        ).select_from(bounded),
    )
    # A record past its retention is as good as absent: the claim takes it over.
    return statement.on_conflict_do_update(
        index_elements=["caller", "key"],
        set_={
            "fingerprint": statement.excluded.fingerprint,
            "status": statement.excluded.status,
            "response_status": None,
            "response_body": None,
            "resource_id": None,
            "created_at": statement.excluded.created_at,
            "expires_at": statement.excluded.expires_at,
        },
        where=_KEYS.c.expires_at <= func.now(),
    ).returning(func.set_config("lock_timeout", null(), True))


def _record_statement() -> Update:
    """The claimed record, completed with the response."""
    # The Core table, not the ORM entity: an ORM-enabled UPDATE goes through the bulk-update
    # machinery (session synchronisation) for nothing here, 6.5 % of a keyed order's profile.
    return (
        update(_KEYS)
        .where(_KEYS.c.caller == bindparam("p_caller"), _KEYS.c.key == bindparam("p_key"))
        .values(
            status=COMPLETED,
            response_status=bindparam("p_response_status"),
            # Typed by their columns.
            response_body=bindparam("p_response_body"),
            resource_id=bindparam("p_resource_id"),
        )
    )


# Built once: these run on every keyed request, and building a statement costs more than
# sending it.
_claim_key = built_once(_claim_statement)
_record = built_once(_record_statement)


async def run(
    *,
    session: AsyncSession,
    request: IdempotentRequest | None,
    policy: IdempotencyPolicy,
    status_code: int,
    action: Callable[[], Awaitable[T]],
    last: Callable[[], Awaitable[None]] | None = None,
) -> Outcome[T]:
    """Run ``action`` in one transaction with the key's record, or replay the recorded
    response. ``action`` must not commit. ``last`` runs after the record is written, just
    before the commit: work that takes contended locks goes there, so they are held for as
    short a time as possible; if it raises, nothing commits."""
    async with session.begin():
        if request is not None:
            recorded = await _claim(session=session, request=request, policy=policy)
            if recorded is not None:
                IDEMPOTENT_REPLAYS.labels(request.operation).inc()
                return Outcome(status_code=recorded[0], body=recorded[1], result=None)
        result = await action()
        body = result.model_dump(mode="json", by_alias=True)
        if request is not None:
            await session.execute(
                _record(),
                {
                    "p_caller": request.caller,
                    "p_key": request.key,
                    "p_response_status": status_code,
                    "p_response_body": body,
                    "p_resource_id": getattr(result, "id", None),
                },
            )
        if last is not None:
            await last()
    return Outcome(status_code=status_code, body=body, result=result)


async def _claim(
    *, session: AsyncSession, request: IdempotentRequest, policy: IdempotencyPolicy
) -> tuple[int, dict[str, Any]] | None:
    """Claim the key for this transaction (``None``), or return the recorded response."""
    try:
        claimed = await session.scalar(
            _claim_key(),
            {
                "p_caller": request.caller,
                "p_key": request.key,
                "p_fingerprint": request.fingerprint,
                "p_retention": policy.retention,
                "p_lock_timeout": f"{policy.lock_timeout_ms}ms",
            },
        )
    except DBAPIError as error:
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            raise _in_flight() from None
        raise
    if claimed is not None:
        return None
    record = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.caller == request.caller, IdempotencyKey.key == request.key
        )
    )
    if record is None or record.status == IN_FLIGHT:
        # Purged in between, or recorded by a process that commits in stages: either way
        # not a response to replay yet.
        raise _in_flight()
    if record.fingerprint != request.fingerprint:
        raise _reused()
    assert record.response_status is not None
    assert record.response_body is not None
    return record.response_status, record.response_body
