"""Idempotency-Key support for unsafe requests (IETF httpapi idempotency-key draft)."""
