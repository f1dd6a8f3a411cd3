"""Order and stock events: the outbox written with each change, and the relay to Redis."""
