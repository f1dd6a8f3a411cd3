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
        "`Authorization` on a WebSocket; a bearer token in the upgrade works too). The ticket "
        "carries the caller's identity and works once.\n\n"
        "**The WebSocket** streams the caller's order events (an administrator's: every "
        "event, stock included). Query: `order_id` (only that order; 404 if the caller may "
        "not read it), `last_event_id` (resume after that `stream_id`: every later event, no "
        "gap). Each message is a JSON text frame: `stream_id`, `id` (drop duplicates by it: "
        "delivery is at least once), `type` (`order.placed`, `order.paid`, `order.shipped`, "
        "`order.delivered`, `order.cancelled`, `stock.changed`), `subject`, `subject_id`, "
        "`version`, `occurred_at`, `payload`. The client sends nothing; pings come every "
        "20 s.\n\n"
        "Refused upgrades are problem+json: 401 `invalid-ticket` or "
        "`authentication-required`, 404 `not-found`, 429 `too-many-connections` or "
        "`quota-exceeded`, 503 `events-unavailable`. Close codes: 1000 the client closed, "
        "1001 the server is going away (reconnect with `last_event_id`), 1011 a heartbeat "
        "went unanswered or an upstream failed, 4001 the client read too slowly (reconnect "
        "with `last_event_id`), 4003 the event stream stopped answering, 4008 idle (nothing "
        "for `EVENTS_WS_IDLE_TIMEOUT_SECONDS`)."
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
