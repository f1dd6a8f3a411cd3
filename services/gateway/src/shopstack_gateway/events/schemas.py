"""The ticket endpoint's answer."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TicketPublic(BaseModel):
    ticket: str = Field(description="Name it once, as `?ticket=`, in the WebSocket upgrade.")
    expires_in: float = Field(description="Seconds the ticket stays valid if not used.")
    url: str = Field(description="The WebSocket's path (`/api/v1/orders/events`).")
