"""Live order events: single-use WebSocket tickets, issued and redeemed by the gateway."""
