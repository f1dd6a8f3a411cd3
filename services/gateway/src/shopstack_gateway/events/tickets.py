"""WebSocket tickets: browsers cannot put an ``Authorization`` header on a WebSocket, so a
client trades its bearer token for a ticket (``POST /api/v1/orders/events/ticket``) and names
it in the upgrade's query (``?ticket=...``).

A ticket is 32 random bytes, kept in Redis (only its SHA-256, under ``gw:ws-ticket:``) with
the verified identity for ``WEBSOCKET_TICKET_TTL_SECONDS``; redeeming it is ``GETDEL``, so it
works once, on whichever gateway replica the upgrade reaches.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shopstack_common.identity import Identity

KEY_PREFIX = "gw:ws-ticket:"


class TicketsUnavailableError(Exception):
    """Redis did not answer: no ticket can be issued or redeemed now."""


def _key(ticket: str) -> str:
    return KEY_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


class TicketStore:
    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl_ms = max(1, round(ttl_seconds * 1000))

    async def issue(self, identity: Identity) -> str:
        ticket = secrets.token_urlsafe(32)
        try:
            await self.redis.set(_key(ticket), json.dumps(identity.to_headers()), px=self.ttl_ms)
        except RedisError as error:
            raise TicketsUnavailableError(str(error)) from error
        return ticket

    async def redeem(self, ticket: str) -> Identity | None:
        """The identity the ticket was issued to, once; None for an unknown, expired or used
        ticket."""
        try:
            stored = await self.redis.getdel(_key(ticket))
        except RedisError as error:
            raise TicketsUnavailableError(str(error)) from error
        if stored is None:
            return None
        headers: dict[str, str] = json.loads(stored)
        return Identity.from_headers(headers)
