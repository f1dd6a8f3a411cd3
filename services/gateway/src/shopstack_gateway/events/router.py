"""``POST /api/v1/orders/events/ticket``: the gateway's own route inside orders' prefix,
since the gateway is what authenticates the WebSocket upgrade."""

from __future__ import annotations

from fastapi import APIRouter, Response

from shopstack_common.problems import EVENTS_UNAVAILABLE, ProblemError
from shopstack_gateway.deps import IdentityDep, ResourcesDep
from shopstack_gateway.events.schemas import TicketPublic
from shopstack_gateway.events.tickets import TicketsUnavailableError

EVENTS_PATH = "/api/v1/orders/events"
TICKET_PATH = EVENTS_PATH + "/ticket"

router = APIRouter(tags=["orders"])


@router.post(
    TICKET_PATH,
    status_code=201,
    response_model=TicketPublic,
    summary="A single-use ticket for the order events WebSocket",
    description=(
        "Trades the bearer token for a ticket that opens one WebSocket at "
        f"`{EVENTS_PATH}?ticket=...` within `expires_in` seconds (browsers cannot send "
        "`Authorization` on a WebSocket). The ticket carries the caller's identity; it works "
        "once."
    ),
    responses={503: {"description": "Redis does not answer: no ticket can be issued now."}},
)
async def issue_events_ticket(
    identity: IdentityDep, resources: ResourcesDep, response: Response
) -> TicketPublic:
    try:
        ticket = await resources.tickets.issue(identity)
    except TicketsUnavailableError:
        raise ProblemError(
            EVENTS_UNAVAILABLE,
            "No WebSocket ticket can be issued: Redis does not answer.",
            headers={"Retry-After": "1"},
        ) from None
    response.headers["Cache-Control"] = "no-store"
    return TicketPublic(
        ticket=ticket, expires_in=resources.settings.websocket_ticket_ttl_seconds, url=EVENTS_PATH
    )
