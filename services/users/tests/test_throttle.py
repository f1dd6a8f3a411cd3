"""The login throttle, on every path that checks a password: the password grant and a
password change on ``PATCH /users/me`` count against the same account and address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"
WRONG = "wrong password!"


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def invalid_grant(response: TestResponse) -> bool:
    return (
        response.status_code == 400
        and response.json is not None
        and (response.json["error"] == "invalid_grant")
    )


def change_password(api: UsersApi, user_id: str, current: str, address: str) -> TestResponse:
    return api.client.patch(
        ME,
        json={"password": "a brand new long passphrase", "current_password": current},
        headers={**api.as_user(user_id), "X-Forwarded-For": address},
    )


def test_repeated_failures_are_throttled_per_account_and_address(api: UsersApi) -> None:
    api.register()
    for _ in range(5):
        assert invalid_grant(api.token(password=WRONG))
    before = sample("shopstack_users_logins_throttled_total")
    throttled = api.token()  # even the right password waits
    assert throttled.status_code == 429
    assert throttled.mimetype == "application/problem+json"
    assert api.body(throttled)["type"] == "/problems/too-many-failed-logins"
    assert 0 < int(throttled.headers["Retry-After"]) <= 900
    assert throttled.headers["Cache-Control"] == "no-store"
    assert sample("shopstack_users_logins_throttled_total") == before + 1
    # Another address is not slowed down by this one's failures.
    assert api.token(address="198.51.100.9").status_code == 200
    # Nor is another account from the same address.
    api.register("bob@example.com")
    assert api.token("bob@example.com").status_code == 200


def test_a_success_resets_the_failure_count(api: UsersApi) -> None:
    api.register()
    for _ in range(4):
        assert invalid_grant(api.token(password=WRONG))
    assert api.token().status_code == 200
    for _ in range(4):
        assert invalid_grant(api.token(password=WRONG))
    assert api.token().status_code == 200


def test_unknown_accounts_are_counted_too(api: UsersApi) -> None:
    for _ in range(5):
        assert invalid_grant(api.token("nobody@example.com", WRONG))
    assert api.token("nobody@example.com", WRONG).status_code == 429


def test_wrong_current_passwords_count_against_the_login(api: UsersApi) -> None:
    """A stolen access token must not buy more password guesses than the token endpoint
    gives: both paths count for the same account and address."""
    user = api.register()
    address = "198.51.100.20"
    for _ in range(3):
        assert change_password(api, user["id"], WRONG, address).status_code == 422
    for _ in range(2):
        assert invalid_grant(api.token(password=WRONG, address=address))
    assert api.token(address=address).status_code == 429
    refused = change_password(api, user["id"], api.password, address)
    assert refused.status_code == 429
    assert api.body(refused)["type"] == "/problems/too-many-failed-logins"
    # The address the gateway resolved is what counts; others are not held up.
    assert change_password(api, user["id"], api.password, "198.51.100.21").status_code == 200


def test_the_client_address_is_the_one_the_gateway_hands_on(api: UsersApi) -> None:
    """A client cannot dodge the throttle with X-Forwarded-For entries of its own: the last
    entry is the address the gateway resolved (the one it rate-limits by)."""
    api.register()
    for n in range(5):
        response = api.client.post(
            TOKEN,
            data={"grant_type": "password", "username": "ada@example.com", "password": "nope"},
            headers={"X-Forwarded-For": f"10.9.9.{n}, 203.0.113.7"},
        )
        assert invalid_grant(response)
    assert api.token(address="203.0.113.7").status_code == 429


def test_login_works_without_redis(
    make_app: AppFactory, dead_redis_url: str, api: UsersApi
) -> None:
    api.register()
    client = make_app(redis_url=dead_redis_url).test_client()
    labels = {"dependency": "redis", "operation": "users.throttle_check"}
    before = sample("shopstack_dependency_fallbacks_total", labels)
    response = client.post(
        TOKEN,
        data={"grant_type": "password", "username": "ada@example.com", "password": api.password},
    )
    assert response.status_code == 200
    assert sample("shopstack_dependency_fallbacks_total", labels) == before + 1
