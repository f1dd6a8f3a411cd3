"""The users service's own metrics (the HTTP and fallback metrics come from shopstack_common)."""

from __future__ import annotations

from prometheus_client import Counter

from shopstack_common.metrics import CACHE_LOOKUPS, DEPENDENCY_FALLBACKS, CacheResult, initialise

TOKENS_ISSUED = Counter(
    "shopstack_users_tokens_issued",
    "Access tokens issued, by grant type.",
    ["grant_type"],
)
TOKEN_ERRORS = Counter(
    "shopstack_users_token_errors",
    "Token requests refused, by grant type and OAuth2 error code.",
    ["grant_type", "error"],
)
REFRESH_TOKEN_REUSE = Counter(
    "shopstack_users_refresh_token_reuse",
    "Rotated refresh tokens presented again; each revoked its whole token family.",
)
LOGINS_THROTTLED = Counter(
    "shopstack_users_logins_throttled",
    "Password checks refused because the account and address had failed too often.",
)
PASSWORD_REHASHES = Counter(
    "shopstack_users_password_rehashes",
    "Stored password hashes upgraded to the current argon2 parameters at login.",
)
LOGINS = Counter(
    "shopstack_users_logins",
    "Password sign-ins by outcome (ok, bad_password, throttled, disabled).",
    ["outcome"],
)
REGISTRATIONS = Counter(
    "shopstack_users_registrations",
    "Accounts created by registration.",
)

# The label values known before any request: every series exists from the start.
GRANT_TYPES = ("password", "refresh_token", "client_credentials")
OAUTH_ERRORS = (
    "invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type", "invalid_scope",
)  # fmt: skip
initialise(TOKENS_ISSUED, GRANT_TYPES)
initialise(TOKEN_ERRORS, (*GRANT_TYPES, "other"), OAUTH_ERRORS)
initialise(LOGINS, ("ok", "bad_password", "throttled", "disabled"))
initialise(CACHE_LOOKUPS, ("user",), [result.value for result in CacheResult])
initialise(
    DEPENDENCY_FALLBACKS,
    ("redis",),
    (
        "users.cache_get", "users.cache_set", "users.cache_invalidate",
        "users.throttle_check", "users.throttle_count", "users.throttle_reset",
    ),
)  # fmt: skip
