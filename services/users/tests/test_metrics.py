"""The users service's own metrics, counted where the thing they count happens: sign-ins by
outcome, registrations, the user cache's lookups and the database pool."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY

from shopstack_users.accounts.models import User
from shopstack_users.resources import resources

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi
    from flask import Flask

ME = "/api/v1/users/me"
WRONG = "wrong password!"


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def logins(outcome: str) -> float:
    return sample("shopstack_users_logins_total", {"outcome": outcome})


def lookups(result: str) -> float:
    return sample("shopstack_cache_lookups_total", {"cache": "user", "result": result})


def test_registrations_are_counted_once_each(api: UsersApi) -> None:
    before = sample("shopstack_users_registrations_total")
    api.register()
    api.register("bob@example.com")
    taken = api.client.post(
        "/api/v1/auth/register",
        json={"email": "bob@example.com", "password": api.password, "full_name": "Bob"},
    )
    assert taken.status_code == 409
    assert sample("shopstack_users_registrations_total") == before + 2


def test_sign_ins_are_counted_by_outcome(api: UsersApi) -> None:
    api.register()
    before = {outcome: logins(outcome) for outcome in ("ok", "bad_password", "throttled")}
    assert api.token().status_code == 200
    assert api.token("nobody@example.com").status_code == 400  # unknown email
    for _ in range(5):
        assert api.token(password=WRONG).status_code == 400
    assert api.token().status_code == 429  # throttled, even with the right password
    assert logins("ok") == before["ok"] + 1
    assert logins("bad_password") == before["bad_password"] + 6
    assert logins("throttled") == before["throttled"] + 1


def test_a_disabled_account_is_its_own_outcome(api: UsersApi) -> None:
    user = api.register()
    found = resources(api.client.application)
    with found.sessions.begin() as session:
        row = session.get(User, uuid.UUID(user["id"]))
        assert row is not None
        row.is_active = False
    before = logins("disabled")
    assert api.token().status_code == 400
    assert logins("disabled") == before + 1


def test_the_user_cache_counts_a_miss_then_a_hit(api: UsersApi) -> None:
    user = api.register()
    headers = api.as_user(user["id"])
    miss, hit = lookups("miss"), lookups("hit")
    assert api.client.get(ME, headers=headers).status_code == 200
    assert (lookups("miss"), lookups("hit")) == (miss + 1, hit)
    assert api.client.get(ME, headers=headers).status_code == 200
    assert (lookups("miss"), lookups("hit")) == (miss + 1, hit + 1)


def test_a_read_without_redis_is_a_fallback(
    make_app: AppFactory, dead_redis_url: str, api: UsersApi
) -> None:
    user = api.register()
    client = make_app(redis_url=dead_redis_url).test_client()
    before, misses = lookups("fallback"), lookups("miss")
    assert client.get(ME, headers=api.as_user(user["id"])).status_code == 200
    assert lookups("fallback") == before + 1
    assert lookups("miss") == misses


def test_the_pool_reports_its_connections(users_app: Flask, api: UsersApi) -> None:
    settings = resources(users_app).settings
    assert sample("shopstack_db_pool_connections_limit") == (
        settings.db_pool_size + settings.db_max_overflow
    )
    waits = sample("shopstack_db_pool_wait_seconds_count")
    api.register()
    assert sample("shopstack_db_pool_wait_seconds_count") > waits
    engine = resources(users_app).engine
    with engine.connect():
        assert sample("shopstack_db_pool_connections_in_use") == 1
    assert sample("shopstack_db_pool_connections_in_use") == 0
    assert sample("shopstack_db_pool_connections_idle") >= 1
    assert sample("shopstack_db_pool_connections_overflow") == 0
