"""Order routes. Identity comes from the gateway's headers; someone else's order is a 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from shopstack_orders.deps import (
    ADMIN_ONLY,
    JSON_BODY,
    IdempotencyKeyDep,
    IdempotencyPolicyDep,
    IdentityDep,
    ProductCacheDep,
    SessionDep,
    UserDep,
)
from shopstack_orders.idempotency.schemas import REPLAY_HEADER, Outcome
from shopstack_orders.openapi import link, location_header, next_page_link, operation_id
from shopstack_orders.orders import service, transitions
from shopstack_orders.orders.lifecycle import OrderStatus
from shopstack_orders.orders.schemas import (
    OrderCreate,
    OrderListParams,
    OrderPublic,
    OrderSummary,
    TransitionCreate,
)
from shopstack_orders.pagination import Page

router = APIRouter(
    prefix="/api/v1/orders", tags=["orders"], generate_unique_id_function=operation_id
)

_REPLAY_DOC = {
    REPLAY_HEADER: {
        "description": "`true` when this is the stored response of an earlier request "
        "with the same Idempotency-Key, replayed.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_ORDER_ID = {"order_id": "$response.body#/id"}
# Where an order (placed, cancelled or moved on) leads.
_ORDER_LINKS = {
    "GetOrder": link("get_order", "The order.", parameters=_ORDER_ID),
    "CancelOrder": link("cancel_order", "Cancel it; its stock returns.", parameters=_ORDER_ID),
    "TransitionOrder": link(
        "transition_order", "Move it along its life cycle.", parameters=_ORDER_ID
    ),
}


def _respond(outcome: Outcome[OrderPublic], headers: dict[str, str] | None = None) -> JSONResponse:
    """The body as it was made or recorded (a replay is exactly the first answer)."""
    headers = dict(headers or {})
    if outcome.replayed:
        headers[REPLAY_HEADER] = "true"
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


_IN_FLIGHT = "a request with the same key still running (`idempotency-key-in-flight`)"


@router.post(
    "",
    summary="Place an order",
    status_code=201,
    response_model=OrderPublic,
    dependencies=[JSON_BODY],
    responses={
        201: {
            "headers": {
                **_REPLAY_DOC,
                **location_header("order"),
            },
            "links": _ORDER_LINKS,
        },
        409: {"description": f"Not enough stock (`out-of-stock`), or {_IN_FLIGHT}."},
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
    return _respond(outcome, {"Location": f"{router.prefix}/{outcome.body['id']}"})


@router.get(
    "",
    summary="List orders",
    response_model=Page[OrderPublic],
    responses={
        200: {"links": {"NextPage": next_page_link("list_orders", OrderListParams)}},
        403: {
            "description": "`user_id` or `all_users` from a caller who is neither an "
            "administrator nor a service client with the `orders:read` scope."
        },
    },
)
async def list_orders(
    params: Annotated[OrderListParams, Query()], viewer: IdentityDep, session: SessionDep
) -> Page[OrderPublic]:
    """The caller's orders, newest first. Administrators and service clients with the
    ``orders:read`` scope may ask for another user's (``user_id``) or everyone's
    (``all_users``)."""
    return await service.list_orders(session=session, viewer=viewer, params=params)


@router.get("/summary", summary="Count the caller's orders by status", response_model=OrderSummary)
async def summarize_orders(viewer: IdentityDep, session: SessionDep) -> OrderSummary:
    """How many of the caller's orders are in each status."""
    return await service.summarize(session=session, viewer=viewer)


@router.get("/{order_id}", summary="Read an order", response_model=OrderPublic)
async def get_order(order_id: uuid.UUID, viewer: IdentityDep, session: SessionDep) -> OrderPublic:
    """The order, for its owner or an administrator; anyone else gets the 404 of an order that
    does not exist."""
    return await service.get_order(session=session, viewer=viewer, order_id=order_id)


@router.post(
    "/{order_id}/cancel",
    summary="Cancel an order",
    response_model=OrderPublic,
    responses={
        200: {"headers": _REPLAY_DOC, "links": _ORDER_LINKS},
        409: {"description": f"Not pending or paid (`illegal-transition`), or {_IN_FLIGHT}."},
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
    outcome = await transitions.change_status(
        session=session,
        cache=cache,
        policy=policy,
        actor=actor,
        order_id=order_id,
        target=OrderStatus.CANCELLED,
        idempotency_key=idempotency_key,
    )
    return _respond(outcome)


@router.post(
    "/{order_id}/transitions",
    summary="Move an order along its life cycle (administrators)",
    response_model=OrderPublic,
    dependencies=[ADMIN_ONLY, JSON_BODY],
    responses={
        200: {"links": _ORDER_LINKS},
        409: {"description": "Not a next status of the order's (`illegal-transition`)."},
    },
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
    outcome = await transitions.change_status(
        session=session,
        cache=cache,
        policy=policy,
        actor=actor,
        order_id=order_id,
        target=transition.to,
    )
    return _respond(outcome)
