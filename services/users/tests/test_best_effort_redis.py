"""A hung Redis (a real redis-server, stopped with SIGSTOP) costs the service one timeout per
back-off window, not one per command: after the first failure, requests do not try Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from shopstack_devstack.pytest_plugin import FreezableRedis
from shopstack_users.resources import resources

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi


# Without a window (the control: the count sees what the back-off prevents), every request
# tries Redis at least once; with one, only the first command meets the frozen Redis.
@pytest.mark.parametrize("window_seconds", [600, 0], ids=["back-off", "no-back-off"])
def test_a_frozen_redis_is_tried_once_per_back_off_window(
    *,
    make_app: AppFactory,
    api: UsersApi,
    freezable_redis: FreezableRedis,
    monkeypatch: pytest.MonkeyPatch,
    window_seconds: float,
) -> None:
    app = make_app(
        redis_url=freezable_redis.url,
        redis_timeout_seconds=0.1,
        redis_retry_after_seconds=window_seconds,
    )
    users = type(api)(app.test_client())
    user = users.register()
    assert users.token().status_code == 200  # Redis answers: no back-off is going on

    pool = resources(app).redis.client.connection_pool
    attempts = 0
    get_connection = pool.get_connection

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return get_connection(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counted)
    freezable_redis.freeze()
    try:
        requests = 0
        for _ in range(3):
            me = users.client.get("/api/v1/users/me", headers=users.as_user(user["id"]))
            assert me.status_code == 200
            assert me.json == user
            assert users.token(password="wrong horse battery").status_code == 400
            assert users.token().status_code == 200
            requests += 3
    finally:
        freezable_redis.thaw()
    if window_seconds:
        assert attempts == 1
    else:
        assert attempts >= requests
