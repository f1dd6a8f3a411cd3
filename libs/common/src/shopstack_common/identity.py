"""The identity the gateway vouches for, carried to upstream services in headers.

The gateway verifies the access token and writes these headers; it removes every header
with the ``X-Shopstack-`` prefix that a client sent, on every route, for HTTP requests and
WebSocket upgrades alike. Services read identity only from here, never from a request body.

The services trust these headers because the chart's NetworkPolicies, on by default
(deploy/helm/shopstack/templates/_networkpolicy.tpl), let only the gateway reach their API
port. Whatever else can reach a service can claim any identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

IDENTITY_HEADER_PREFIX = "x-shopstack-"
USER_ID_HEADER = "X-Shopstack-User-Id"
CLIENT_ID_HEADER = "X-Shopstack-Client-Id"
ROLES_HEADER = "X-Shopstack-Roles"
SCOPES_HEADER = "X-Shopstack-Scopes"
TOKEN_ID_HEADER = "X-Shopstack-Token-Id"  # noqa: S105 - a header name, not a secret

ADMIN_ROLE = "admin"
CUSTOMER_ROLE = "customer"


def is_identity_header(name: str) -> bool:
    return name.lower().startswith(IDENTITY_HEADER_PREFIX)


@dataclass(frozen=True)
class Identity:
    """A verified caller: a user (``user_id``) or a service client (``client_id`` only)."""

    user_id: uuid.UUID | None = None
    client_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @property
    def subject(self) -> str:
        """A printable id for logs and audit records."""
        if self.user_id is not None:
            return str(self.user_id)
        return f"client:{self.client_id}"

    def to_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.user_id is not None:
            headers[USER_ID_HEADER] = str(self.user_id)
        if self.client_id:
            headers[CLIENT_ID_HEADER] = self.client_id
        headers[ROLES_HEADER] = ",".join(sorted(self.roles))
        headers[SCOPES_HEADER] = " ".join(sorted(self.scopes))
        if self.token_id:
            headers[TOKEN_ID_HEADER] = self.token_id
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Identity | None:
        """Read the gateway's headers; ``None`` when there is no (well-formed) identity.

        ``headers`` must look names up case-insensitively (Starlette, Werkzeug and aiohttp
        header mappings all do).
        """
        raw_user = headers.get(USER_ID_HEADER)
        client_id = headers.get(CLIENT_ID_HEADER) or None
        user_id: uuid.UUID | None = None
        if raw_user:
            try:
                user_id = uuid.UUID(raw_user)
            except ValueError:
                return None
        if user_id is None and client_id is None:
            return None
        roles = frozenset(r for r in (headers.get(ROLES_HEADER) or "").split(",") if r)
        scopes = frozenset((headers.get(SCOPES_HEADER) or "").split())
        return cls(
            user_id=user_id,
            client_id=client_id,
            roles=roles,
            scopes=scopes,
            token_id=headers.get(TOKEN_ID_HEADER) or None,
        )
