"""The console's client of the orders API, with the API faked at the transport (unit test)."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from shopstack_common.logs import BurstLogger
from shopstack_users.console.orders_api import IssuedToken, OrdersApi, TokenUnavailableError

USER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tokens:
    def __init__(self) -> None:
        self.issued = 0
        self.fail = False

    def __call__(self) -> IssuedToken:
        if self.fail:
            raise TokenUnavailableError("client 'users-console': invalid_client")
        self.issued += 1
        return IssuedToken(access_token=f"token-{self.issued}", expires_in=900)


def make_api(handler: httpx.MockTransport, tokens: Tokens, clock: Clock) -> OrdersApi:
    return OrdersApi(
        http=httpx.Client(base_url="http://gateway.test", transport=handler),
        issue_token=tokens,
        burst_log=BurstLogger(logging.getLogger("test"), quiet_seconds=60),
        clock=clock,
    )


def test_orders_are_asked_for_with_the_clients_token_which_is_kept() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [{"id": "o1"}], "next_cursor": None})

    tokens, clock = Tokens(), Clock()
    api = make_api(httpx.MockTransport(answer), tokens, clock)
    assert api.recent_orders(USER).orders == [{"id": "o1"}]
    assert api.recent_orders(USER).orders == [{"id": "o1"}]
    assert tokens.issued == 1
    assert seen[0].url.path == "/api/v1/orders"
    assert dict(seen[0].url.params) == {"user_id": str(USER), "limit": "5"}
    assert seen[0].headers["Authorization"] == "Bearer token-1"
    clock.now += 900 - 59  # within a minute of its expiry: replaced
    api.recent_orders(USER)
    assert tokens.issued == 2
    assert seen[-1].headers["Authorization"] == "Bearer token-2"


def test_a_refused_token_is_replaced_once() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-1":
            return httpx.Response(401, json={"type": "invalid-token"})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    tokens = Tokens()
    api = make_api(httpx.MockTransport(answer), tokens, Clock())
    result = api.recent_orders(USER)
    assert result.unavailable is None
    assert tokens.issued == 2


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(503, json={}), "answered 503"),
        (httpx.Response(200, text="not json"), "unexpected shape"),
        (httpx.Response(200, json={"items": "nope"}), "unexpected shape"),
        (httpx.Response(200, json=[1, 2]), "unexpected shape"),
    ],
)
def test_a_bad_answer_is_said_not_raised(answer: httpx.Response, reason: str) -> None:
    api = make_api(httpx.MockTransport(lambda _request: answer), Tokens(), Clock())
    result = api.recent_orders(USER)
    assert result.orders == []
    assert result.unavailable is not None
    assert reason in result.unavailable


def test_an_unreachable_api_or_a_failed_grant_is_said_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = make_api(httpx.MockTransport(refuse), Tokens(), Clock())
    assert "could not be reached" in (api.recent_orders(USER).unavailable or "")
    tokens = Tokens()
    tokens.fail = True
    ok = httpx.MockTransport(lambda _r: httpx.Response(200, json={"items": []}))
    api = make_api(ok, tokens, Clock())
    assert "invalid_client" in (api.recent_orders(USER).unavailable or "")


def test_without_configuration_it_says_what_is_missing() -> None:
    api = OrdersApi(http=None, issue_token=None, burst_log=BurstLogger(logging.getLogger("test")))
    assert "CONSOLE_ORDERS_API_URL" in (api.recent_orders(USER).unavailable or "")
