"""``GET /api/v1/me/overview``: the caller's profile and recent orders in one answer (a BFF)."""
