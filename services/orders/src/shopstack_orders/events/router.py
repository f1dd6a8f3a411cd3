"""``/api/v1/orders/events``: the caller's order events, live, over a WebSocket.

The gateway authenticates the upgrade (a single-use ticket or a bearer token) and sends the
identity in its headers, as for any request. Refusals before the upgrade is accepted are
problem+json answers (401 no identity, 404 an order the caller may not read, 429 too many
connections, 503 Redis down); close codes after it are in ``events.live``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket
from redis.exceptions import RedisError
from starlette.websockets import WebSocketDisconnect

from shopstack_common.asgi import send_problem
from shopstack_common.identity import Identity
from shopstack_common.problems import (
    AUTHENTICATION_REQUIRED,
    EVENTS_UNAVAILABLE,
    TOO_MANY_CONNECTIONS,
    ProblemError,
)
from shopstack_orders.deps import resources_of
from shopstack_orders.events.live import CLOSE_CLIENT_LEFT, Watch, stream_events
from shopstack_orders.metrics import EVENT_CONNECTIONS, EVENT_CONNECTIONS_CLOSED
from shopstack_orders.orders import service as orders

router = APIRouter()

# A stream entry id, as XADD assigns them: milliseconds-sequence.
STREAM_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"


@router.websocket("/api/v1/orders/events")
async def order_events(
    websocket: WebSocket,
    order_id: Annotated[uuid.UUID | None, Query()] = None,
    last_event_id: Annotated[str | None, Query(pattern=STREAM_ID, max_length=41)] = None,
) -> None:
    resources = resources_of(websocket.app)
    settings = resources.settings
    viewer = Identity.from_headers(websocket.headers)
    if viewer is None:
        await _refuse(websocket, ProblemError(AUTHENTICATION_REQUIRED, "No identity."))
        return
    if order_id is not None:
        try:
            async with resources.sessions() as session:
                await orders.get_order(session=session, viewer=viewer, order_id=order_id)
        except ProblemError as error:  # someone else's order is a 404, as over HTTP
            await _refuse(websocket, error)
            return
    connection = uuid.uuid4().hex
    slots = resources.connection_slots
    try:
        claimed = await slots.claim(viewer, connection)
    except RedisError as error:
        resources.burst_log.warning(
            "events.redis", "cannot claim an event connection slot: %r", error
        )
        await _refuse(
            websocket,
            ProblemError(
                EVENTS_UNAVAILABLE,
                "The event stream does not answer.",
                headers={"Retry-After": "1"},
            ),
        )
        return
    if not claimed:
        await _refuse(
            websocket,
            ProblemError(
                TOO_MANY_CONNECTIONS,
                f"At most {slots.limit} event connections at a time.",
                headers={"Retry-After": "5"},
            ),
        )
        return
    counted = contextlib.ExitStack()
    keeper = asyncio.create_task(slots.keep(viewer, connection))
    try:
        await websocket.accept()
        counted.enter_context(resources.going_away.connection())
        counted.enter_context(EVENT_CONNECTIONS.track_inprogress())

        async def disconnected() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        closed = await stream_events(
            redis=resources.events_redis,
            stream=settings.events_stream,
            watch=Watch(viewer, order_id),
            last_id=last_event_id,
            queue_size=settings.events_ws_queue_size,
            block_ms=settings.events_ws_block_ms,
            idle_timeout_seconds=settings.events_ws_idle_timeout_seconds,
            send_text=websocket.send_text,
            disconnected=disconnected,
            going_away=resources.going_away.event,
        )
        EVENT_CONNECTIONS_CLOSED.labels(closed.label).inc()
        if closed.code != CLOSE_CLIENT_LEFT:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close(closed.code, closed.reason)
    except (WebSocketDisconnect, OSError):
        EVENT_CONNECTIONS_CLOSED.labels("client").inc()
    finally:
        keeper.cancel()
        await slots.release(viewer, connection)
        counted.close()


async def _refuse(websocket: WebSocket, error: ProblemError) -> None:
    await send_problem(websocket.scope, websocket.send, error)
