"""The orders API as the console calls it: as a service, with a client-credentials token.

The console never reads orders' tables. It asks ``GET /api/v1/orders?user_id=…`` through the
gateway (which verifies the token and tells orders who is asking) as the service client
``CONSOLE_CLIENT_ID``, whose token carries ``orders:read``. The token comes from this
service's own client-credentials grant (the same code as the token endpoint, secret checked)
and is kept until shortly before it expires, so pages do not each pay for an argon2 check.

Orders being away is not the console's failure: the page says the orders cannot be shown,
and the miss is counted and logged once per burst.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import DEPENDENCY_FALLBACKS
from shopstack_common.problems import ProblemError
from shopstack_users.tokens import service as tokens

Sessions = sessionmaker[Session]

SCOPE = "orders:read"
# A token is replaced this long before it expires, so one never runs out mid-request.
TOKEN_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class RecentOrders:
    """A user's latest orders, or why they cannot be shown (``unavailable``)."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    unavailable: str | None = None


class OrdersApi:
    def __init__(
        self,
        *,
        http: httpx.Client | None,
        issue_token: Callable[[], IssuedToken] | None,
        burst_log: BurstLogger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``http`` is None when no orders URL is configured, ``issue_token`` when no client
        secret is: the console then says so instead of asking. ``issue_token`` raises
        ``TokenUnavailableError`` when the grant fails."""
        self._http = http
        self._issue_token = issue_token
        self._burst_log = burst_log
        self._clock = clock
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (token, when to replace it)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def recent_orders(self, user_id: uuid.UUID, *, limit: int = 5) -> RecentOrders:
        if self._http is None or self._issue_token is None:
            return RecentOrders(
                unavailable="The console is not connected to the orders API "
                "(CONSOLE_ORDERS_API_URL and CONSOLE_CLIENT_SECRET)."
            )
        params = {"user_id": str(user_id), "limit": str(limit)}
        try:
            response = self._get(params)
            if response.status_code == 401:
                # The token was refused (a rotated key, a clock step): one fresh try.
                self._forget_token()
                response = self._get(params)
        except (httpx.HTTPError, TokenUnavailableError) as error:
            return self._unavailable(f"The orders API could not be reached ({error}).")
        if response.status_code != 200:
            return self._unavailable(f"The orders API answered {response.status_code}.")
        try:
            items = response.json()["items"]
        except (ValueError, KeyError, TypeError):
            return self._unavailable("The orders API answered in an unexpected shape.")
        if not isinstance(items, list):
            return self._unavailable("The orders API answered in an unexpected shape.")
        return RecentOrders(orders=items)

    def _get(self, params: dict[str, str]) -> httpx.Response:
        assert self._http is not None
        headers = {"Authorization": f"Bearer {self._token_value()}"}
        return self._http.get("/api/v1/orders", params=params, headers=headers)

    def _token_value(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or self._token[1] <= now:
                assert self._issue_token is not None
                issued = self._issue_token()  # TokenUnavailableError when it cannot
                renew_at = now + max(issued.expires_in - TOKEN_MARGIN_SECONDS, 0.0)
                self._token = (issued.access_token, renew_at)
            return self._token[0]

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _unavailable(self, reason: str) -> RecentOrders:
        DEPENDENCY_FALLBACKS.labels("orders", "users.console_recent_orders").inc()
        self._burst_log.warning("orders-api", "recent orders not shown: %s", reason)
        return RecentOrders(unavailable=reason)


class TokenUnavailableError(RuntimeError):
    """The console's own client-credentials grant failed (a wrong secret, no signing key,
    the database away)."""


def client_credentials_token(
    *, sessions: Sessions, issuer: tokens.Issuer, client_id: str, client_secret: str
) -> Callable[[], IssuedToken]:
    """The console's token source: this service's client-credentials grant for its client."""

    def issue() -> IssuedToken:
        try:
            issued = tokens.client_credentials_grant(
                sessions=sessions,
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                scope=SCOPE,
            )
        except tokens.OAuthError as error:
            raise TokenUnavailableError(
                f"client {client_id!r}: {error.error}: {error.description}"
            ) from error
        except ProblemError as error:
            raise TokenUnavailableError(str(error)) from error
        return IssuedToken(access_token=issued.access_token, expires_in=issued.expires_in)

    return issue
