"""Order routes. Identity comes from the gateway's headers; someone else's order is a 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from shopstack_orders.deps import (
    IdempotencyKeyDep,
    IdempotencyPolicyDep,
    IdentityDep,
    ProductCacheDep,
    SessionDep,
    UserDep,
    require_admin,
)
from shopstack_orders.idempotency.schemas import REPLAY_HEADER
from shopstack_orders.orders import service
from shopstack_orders.orders.lifecycle import OrderStatus
from shopstack_orders.orders.schemas import (
    OrderCreate,
    OrderListParams,
    OrderPublic,
    OrderSummary,
    TransitionCreate,
)
from shopstack_orders.pagination import Page
from shopstack_orders.problems import problem_responses

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])

_REPLAY_DOC = {
    REPLAY_HEADER: {
        "description": "`true` when this is the stored response of an earlier request "
        "with the same Idempotency-Key, replayed.",
        "schema": {"type": "string"},
    }
}


@router.post(
    "",
    status_code=201,
    response_model=OrderPublic,
    responses={
        201: {"headers": _REPLAY_DOC},
        **problem_responses(401, 403, 409, 422, 503),
    },
)
async def place_order(
    *,
    order_in: OrderCreate,
    buyer: UserDep,
    idempotency_key: IdempotencyKeyDep,
    session: SessionDep,
    cache: ProductCacheDep,
    policy: IdempotencyPolicyDep,
) -> JSONResponse:
    """Place an order for the caller. Stock is reserved atomically; prices come from the
    catalog. Send an ``Idempotency-Key`` to make retries safe: without one, a retry after a
    lost response may place a second order."""
    outcome = await service.place_order(
        session=session,
        cache=cache,
        policy=policy,
        buyer=buyer,
        order_in=order_in,
        idempotency_key=idempotency_key,
    )
    return outcome.to_response({"Location": f"{router.prefix}/{outcome.body['id']}"})


@router.get("", response_model=Page[OrderPublic], responses=problem_responses(401, 403, 422, 503))
async def list_orders(
    params: Annotated[OrderListParams, Query()], viewer: IdentityDep, session: SessionDep
) -> Page[OrderPublic]:
    """The caller's orders, newest first. Administrators may ask for another user's
    (``user_id``) or everyone's (``all_users``)."""
    return await service.list_orders(session=session, viewer=viewer, params=params)


@router.get("/summary", response_model=OrderSummary, responses=problem_responses(401, 503))
async def summarize_orders(viewer: IdentityDep, session: SessionDep) -> OrderSummary:
    """How many of the caller's orders are in each status."""
    return await service.summarize(session=session, viewer=viewer)


@router.get(
    "/{order_id}", response_model=OrderPublic, responses=problem_responses(401, 404, 422, 503)
)
async def get_order(order_id: uuid.UUID, viewer: IdentityDep, session: SessionDep) -> OrderPublic:
    return await service.get_order(session=session, viewer=viewer, order_id=order_id)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderPublic,
    responses={
        200: {"headers": _REPLAY_DOC},
        **problem_responses(401, 404, 409, 422, 503),
    },
)
async def cancel_order(
    *,
    order_id: uuid.UUID,
    actor: IdentityDep,
    idempotency_key: IdempotencyKeyDep,
    session: SessionDep,
    cache: ProductCacheDep,
    policy: IdempotencyPolicyDep,
) -> JSONResponse:
    """Cancel a pending or paid order (its owner or an administrator); the stock returns."""
    outcome = await service.change_status(
        session=session,
        cache=cache,
        policy=policy,
        actor=actor,
        order_id=order_id,
        target=OrderStatus.CANCELLED,
        idempotency_key=idempotency_key,
    )
    return outcome.to_response()


@router.post(
    "/{order_id}/transitions",
    response_model=OrderPublic,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def transition_order(
    *,
    order_id: uuid.UUID,
    transition: TransitionCreate,
    actor: IdentityDep,
    session: SessionDep,
    cache: ProductCacheDep,
    policy: IdempotencyPolicyDep,
) -> JSONResponse:
    """Move an order along its life cycle (administrators)."""
    outcome = await service.change_status(
        session=session,
        cache=cache,
        policy=policy,
        actor=actor,
        order_id=order_id,
        target=transition.to,
    )
    return outcome.to_response()
