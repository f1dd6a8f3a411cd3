"""The ``user_admin`` blueprint: listing, reading and changing users."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

USERS = "/api/v1/users"


@pytest.fixture
def people(api: UsersApi) -> dict[str, Any]:
    """An admin, a customer and another customer, with the headers the gateway sets."""
    admin = api.admin()
    ada = api.register("ada@example.com")
    bob = api.register("bob@example.com", full_name="Bob")
    return {
        "admin": admin,
        "ada": ada,
        "bob": bob,
        "as_admin": api.as_user(admin["id"], "admin", "customer"),
        "as_ada": api.as_user(ada["id"], "customer"),
    }


def call(client: FlaskClient, route: str, target: str, headers: dict[str, str]) -> TestResponse:
    method, path, body = {
        "list": ("GET", USERS, None),
        "get": ("GET", f"{USERS}/{target}", None),
        "patch": ("PATCH", f"{USERS}/{target}", {"full_name": "Renamed"}),
        "roles": ("PUT", f"{USERS}/{target}/roles", {"roles": ["customer"]}),
        "delete": ("DELETE", f"{USERS}/{target}", None),
    }[route]
    return client.open(path, method=method, json=body, headers=headers)


ADMIN_ROUTES = ["list", "get", "patch", "roles", "delete"]


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_admin_routes_need_an_identity(
    client: FlaskClient, people: dict[str, Any], route: str
) -> None:
    response = call(client, route, people["bob"]["id"], {})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("route", "status"),
    [("list", 403), ("get", 404), ("patch", 404), ("roles", 404), ("delete", 404)],
)
def test_a_customer_on_another_user_learns_nothing(
    client: FlaskClient, people: dict[str, Any], route: str, status: int
) -> None:
    response = call(client, route, people["bob"]["id"], people["as_ada"])
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    # The same answer as for an id that does not exist.
    if status == 404:
        assert call(client, route, str(uuid.uuid4()), people["as_ada"]).status_code == 404


@pytest.mark.parametrize(
    ("route", "status"), [("get", 200), ("patch", 403), ("roles", 403), ("delete", 403)]
)
def test_a_customer_on_their_own_id(
    client: FlaskClient, people: dict[str, Any], route: str, status: int
) -> None:
    assert call(client, route, people["ada"]["id"], people["as_ada"]).status_code == status


@pytest.mark.parametrize(
    ("route", "status"),
    [("list", 200), ("get", 200), ("patch", 200), ("roles", 200), ("delete", 204)],
)
def test_an_admin_may_use_every_admin_route(
    client: FlaskClient, people: dict[str, Any], route: str, status: int
) -> None:
    assert call(client, route, people["bob"]["id"], people["as_admin"]).status_code == status


@pytest.mark.parametrize(
    ("route", "status"), [("get", 404), ("patch", 404), ("roles", 404), ("delete", 404)]
)
def test_an_admin_gets_404_for_missing_users(
    client: FlaskClient, people: dict[str, Any], route: str, status: int
) -> None:
    assert call(client, route, str(uuid.uuid4()), people["as_admin"]).status_code == status


@pytest.mark.parametrize(
    ("route", "status"),
    [("list", 200), ("get", 200), ("patch", 403), ("roles", 403), ("delete", 403)],
)
def test_a_service_client_with_users_read(
    client: FlaskClient, people: dict[str, Any], api: UsersApi, route: str, status: int
) -> None:
    headers = api.as_client("reports", "users:read")
    assert call(client, route, people["bob"]["id"], headers).status_code == status


def test_roles_in_headers_only_come_from_the_gateway(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    """A body cannot make anyone an admin; only the identity headers carry roles."""
    response = client.get(USERS, json={"roles": ["admin"]}, headers=people["as_ada"])
    assert response.status_code == 403


def test_list_pages_through_everyone_once(
    client: FlaskClient, api: UsersApi, people: dict[str, Any]
) -> None:
    for n in range(4):
        api.register(f"user{n}@example.com")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(USERS, query_string=query, headers=people["as_admin"])
        assert response.status_code == 200
        body = response.json
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 7
    assert "is_active" in body["items"][0]
    assert "password_hash" not in body["items"][0]


def test_list_filters_by_email_prefix_and_role(
    client: FlaskClient, api: UsersApi, people: dict[str, Any]
) -> None:
    api.register("bobby@example.com")
    api.register("b%_@example.com")
    by_prefix = client.get(USERS, query_string={"email_prefix": "BOB"}, headers=people["as_admin"])
    assert sorted(u["email"] for u in by_prefix.json["items"]) == [
        "bob@example.com",
        "bobby@example.com",
    ]
    # LIKE wildcards in the prefix are literal characters.
    literal = client.get(USERS, query_string={"email_prefix": "b%"}, headers=people["as_admin"])
    assert [u["email"] for u in literal.json["items"]] == ["b%_@example.com"]
    admins = client.get(USERS, query_string={"role": "admin"}, headers=people["as_admin"])
    assert [u["email"] for u in admins.json["items"]] == ["root@example.com"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, "cursor"),  # well-formed base64, nonsense inside
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"role": "root"}, "role"),
        ({"email_prefix": "x" * 255}, "email_prefix"),
        ({"email_prefix": "a\x00b"}, "email_prefix"),
        ({"cursor": "a\x00b"}, "cursor"),
    ],
)
def test_list_bad_query_names_the_field(
    client: FlaskClient, people: dict[str, Any], query: dict[str, Any], field: str
) -> None:
    response = client.get(USERS, query_string=query, headers=people["as_admin"])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == [field]
    assert response.json["errors"][0]["location"] == "query"
    expected = (
        "invalid-cursor" if field == "cursor" and "\x00" not in query[field] else "validation"
    )
    assert response.json["type"] == f"/problems/{expected}"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"is_active": "yes"}, "is_active"),
        ({"is_active": 1}, "is_active"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"roles": ["admin"]}, "roles"),
        ({"password_hash": "x"}, "password_hash"),
    ],
)
def test_admin_patch_bad_input(
    client: FlaskClient, people: dict[str, Any], payload: dict[str, Any], field: str
) -> None:
    response = client.patch(
        f"{USERS}/{people['bob']['id']}", json=payload, headers=people["as_admin"]
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [field]


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "ADA@example.com"},
        # Deactivating revokes refresh tokens first, which flushes the email change early.
        {"email": "ada@example.com", "is_active": False},
        {"email": "ada@example.com", "full_name": "Bobby", "is_active": True},
    ],
)
def test_admin_patch_email_must_stay_unique(
    client: FlaskClient, people: dict[str, Any], changes: dict[str, Any]
) -> None:
    bob = people["bob"]["id"]
    response = client.patch(f"{USERS}/{bob}", json=changes, headers=people["as_admin"])
    assert response.status_code == 409
    assert response.json["type"] == "/problems/email-taken"
    assert response.json["errors"][0]["field"] == "email"
    # Nothing of the refused change was kept.
    unchanged = client.get(f"{USERS}/{bob}", headers=people["as_admin"]).json
    assert (unchanged["email"], unchanged["full_name"], unchanged["is_active"]) == (
        "bob@example.com",
        "Bob",
        True,
    )


@pytest.mark.parametrize(
    "roles", [[], ["root"], ["admin", "admin"], "admin", None, ["customer", "admin", "x"]]
)
def test_roles_must_be_known(client: FlaskClient, people: dict[str, Any], roles: Any) -> None:
    response = client.put(
        f"{USERS}/{people['bob']['id']}/roles", json={"roles": roles}, headers=people["as_admin"]
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"].startswith("roles")


def test_the_last_admin_cannot_be_removed(client: FlaskClient, people: dict[str, Any]) -> None:
    admin_id = people["admin"]["id"]
    headers = people["as_admin"]
    demote = client.put(f"{USERS}/{admin_id}/roles", json={"roles": ["customer"]}, headers=headers)
    assert demote.status_code == 409
    assert demote.json["type"] == "/problems/last-admin"
    assert (
        client.patch(f"{USERS}/{admin_id}", json={"is_active": False}, headers=headers).status_code
        == 409
    )
    assert client.delete(f"{USERS}/{admin_id}", headers=headers).status_code == 409
    # With a second admin, the first may step down.
    bob = people["bob"]["id"]
    promoted = client.put(f"{USERS}/{bob}/roles", json={"roles": ["admin"]}, headers=headers)
    assert promoted.status_code == 200
    assert promoted.json["roles"] == ["admin"]
    assert (
        client.put(
            f"{USERS}/{admin_id}/roles", json={"roles": ["customer"]}, headers=headers
        ).status_code
        == 200
    )


def test_delete_removes_the_user_and_their_sessions(
    client: FlaskClient, api: UsersApi, people: dict[str, Any]
) -> None:
    refresh = api.token("bob@example.com").json["refresh_token"]
    bob = people["bob"]["id"]
    assert client.delete(f"{USERS}/{bob}", headers=people["as_admin"]).status_code == 204
    assert client.get(f"{USERS}/{bob}", headers=people["as_admin"]).status_code == 404
    assert client.delete(f"{USERS}/{bob}", headers=people["as_admin"]).status_code == 404
    response = api.form(
        "/api/v1/auth/token", {"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert response.json["error"] == "invalid_grant"


def test_every_write_invalidates_the_cached_user(
    client: FlaskClient, people: dict[str, Any], redis_url: str
) -> None:
    bob = people["bob"]["id"]
    key = f"users:user:{bob}"
    cache = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        writes = [
            ("PATCH", f"{USERS}/{bob}", {"full_name": "Robert"}, "full_name", "Robert"),
            (
                "PUT",
                f"{USERS}/{bob}/roles",
                {"roles": ["admin", "customer"]},
                "roles",
                ["admin", "customer"],
            ),
            ("PATCH", f"{USERS}/{bob}", {"is_active": False}, "is_active", False),
        ]
        for method, path, body, field, expected in writes:
            assert client.get(f"{USERS}/{bob}", headers=people["as_admin"]).status_code == 200
            assert cache.exists(key)
            assert 0 < cache.ttl(key) <= 300
            assert (
                client.open(path, method=method, json=body, headers=people["as_admin"]).status_code
                == 200
            )
            assert not cache.exists(key)
            assert client.get(f"{USERS}/{bob}", headers=people["as_admin"]).json[field] == expected
        client.patch("/api/v1/users/me", json={"full_name": "Rob"}, headers={**people["as_ada"]})
        assert client.delete(f"{USERS}/{bob}", headers=people["as_admin"]).status_code == 204
        assert not cache.exists(key)
    finally:
        cache.close()


def test_own_profile_change_invalidates_the_cache(
    client: FlaskClient, people: dict[str, Any], redis_url: str
) -> None:
    ada = people["ada"]["id"]
    cache = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert (
            client.get("/api/v1/users/me", headers=people["as_ada"]).json["full_name"]
            == "Ada Lovelace"
        )
        assert cache.exists(f"users:user:{ada}")
        client.patch("/api/v1/users/me", json={"full_name": "Ada King"}, headers=people["as_ada"])
        assert not cache.exists(f"users:user:{ada}")
        assert (
            client.get(f"{USERS}/{ada}", headers=people["as_ada"]).json["full_name"] == "Ada King"
        )
    finally:
        cache.close()


def test_the_cache_is_what_reads_use(
    client: FlaskClient, people: dict[str, Any], redis_url: str
) -> None:
    """Reads are served from Redis while the entry lives (proved by planting a value)."""
    ada = people["ada"]["id"]
    client.get("/api/v1/users/me", headers=people["as_ada"])
    cache = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        key = f"users:user:{ada}"
        planted = cache.get(key)
        assert planted is not None
        cache.set(key, planted.replace("Ada Lovelace", "From Cache"), ex=60)
    finally:
        cache.close()
    assert (
        client.get("/api/v1/users/me", headers=people["as_ada"]).json["full_name"] == "From Cache"
    )


def test_admin_writes_work_without_redis(
    make_app: AppFactory, dead_redis_url: str, people: dict[str, Any]
) -> None:
    client = make_app(redis_url=dead_redis_url).test_client()
    bob = people["bob"]["id"]
    response = client.patch(
        f"{USERS}/{bob}", json={"full_name": "Robert"}, headers=people["as_admin"]
    )
    assert response.status_code == 200
    assert client.get(f"{USERS}/{bob}", headers=people["as_admin"]).json["full_name"] == "Robert"


def test_an_admin_patch_must_change_something(client: FlaskClient, people: dict[str, Any]) -> None:
    response = client.patch(f"{USERS}/{people['bob']['id']}", json={}, headers=people["as_admin"])
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["body"]
