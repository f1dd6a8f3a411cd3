"""The console's pages on real PostgreSQL and Redis: sessions, CSRF, forms, the audit trail,
security headers."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from shopstack_users.console.models import ConsoleSession
from shopstack_users.resources import resources
from shopstack_users.tokens.models import ServiceClient

if TYPE_CHECKING:
    from conftest import AppFactory, UsersApi

    from .conftest import Console, ConsoleHelpers

PAGES = ["/admin", "/admin/users", "/admin/clients", "/admin/keys", "/admin/audit"]


def console_sessions(app: Flask) -> list[ConsoleSession]:
    with resources(app).sessions.begin() as session:
        return list(session.execute(select(ConsoleSession)).scalars())


# -- sessions -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/admin/users/" + str(uuid.uuid4())])
def test_every_page_needs_a_signed_in_admin(console: Console, path: str) -> None:
    response = console.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


def test_sign_in_makes_a_new_server_side_session_and_sign_out_ends_it(
    console: Console, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    console.get("/admin/login")
    before = console.session_cookie()
    assert before is not None  # the CSRF token lives in it before sign-in
    response = console.sign_in()
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin"
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if "shopstack_console" in h)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path"} <= flags
    assert "samesite=lax" in cookie.lower()
    assert "path=/admin" in cookie.lower()
    assert "secure" not in flags  # ENVIRONMENT=test, over plain HTTP
    assert "expires" not in flags  # gone with the browser; the server times it out
    assert console.session_cookie() != before
    [row] = console_sessions(users_app)
    assert row.address == helpers.address
    signed_in_cookie = console.session_cookie()
    assert console.get("/admin").status_code == 200

    # Signed in already, the sign-in page leads on to the console.
    assert console.get("/admin/login").headers["Location"] == "/admin"
    out = console.submit("/admin", "/admin/logout")
    assert out.status_code == 302
    assert out.headers["Location"] == "/admin/login"
    assert console_sessions(users_app) == []
    assert console.get("/admin").status_code == 302
    # The cookie of the ended session opens nothing any more.
    assert signed_in_cookie is not None
    console.client.set_cookie("shopstack_console", signed_in_cookie, path="/admin")
    assert console.get("/admin").status_code == 302
    actions = [e["action"] for e in helpers.audit_rows(users_app)]
    assert actions == ["console.signed_in", "console.signed_out"]


def test_each_sign_in_gets_its_own_session_id(
    make_app: AppFactory, console: Console, users_app: Flask, api: UsersApi
) -> None:
    from .conftest import Console as ConsoleClient

    other = ConsoleClient(users_app.test_client(), api)
    assert console.sign_in().status_code == 302
    assert other.sign_in().status_code == 302
    assert console.session_cookie() != other.session_cookie()
    hashes = {row.id_hash for row in console_sessions(users_app)}
    assert len(hashes) == 2


def test_the_cookie_is_secure_outside_development(
    make_app: AppFactory, api: UsersApi, admin: dict[str, Any]
) -> None:
    from .conftest import Console as ConsoleClient

    app = make_app(environment="production", console_secret_key="a" * 64)
    response = ConsoleClient(app.test_client(), api).sign_in()
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if "shopstack_console" in h)
    assert "Secure" in cookie


def test_outside_development_the_console_needs_its_secret_key(make_app: AppFactory) -> None:
    app = make_app(environment="production")
    response = app.test_client().get("/admin/login")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("column", ["last_seen_at", "created_at"])
def test_a_session_times_out(signed_in: Console, users_app: Flask, column: str) -> None:
    settings = resources(users_app).settings
    limit = {
        "last_seen_at": settings.console_idle_timeout_seconds,
        "created_at": settings.console_absolute_timeout_seconds,
    }[column]
    assert signed_in.get("/admin").status_code == 200
    long_ago = datetime.now(UTC) - timedelta(seconds=limit + 1)
    with resources(users_app).sessions.begin() as session:
        session.execute(update(ConsoleSession).values({column: long_ago}))
    response = signed_in.get("/admin")
    assert response.status_code == 302
    assert console_sessions(users_app) == []
    login = signed_in.get(response.headers["Location"])
    assert "Your console session has ended" in login.get_data(as_text=True)


def test_losing_the_admin_role_ends_the_session_at_once(
    signed_in: Console, users_app: Flask, admin: dict[str, Any], api: UsersApi
) -> None:
    other = api.admin("second@example.com")
    response = api.client.put(
        f"/api/v1/users/{admin['id']}/roles",
        json={"roles": ["customer"]},
        headers=api.as_user(other["id"], "admin"),
    )
    assert response.status_code == 200
    assert signed_in.get("/admin").status_code == 302
    assert console_sessions(users_app) == []


def test_a_customer_cannot_sign_in(console: Console, api: UsersApi, users_app: Flask) -> None:
    api.register("ada@example.com")
    response = console.sign_in("ada@example.com")
    assert response.status_code == 422
    assert "may not use the console" in response.get_data(as_text=True)
    assert console_sessions(users_app) == []
    assert console.get("/admin").status_code == 302


def test_a_wrong_password_is_refused_and_throttled_like_the_token_endpoint(
    console: Console, api: UsersApi, helpers: ConsoleHelpers
) -> None:
    for _ in range(2):
        assert console.sign_in(password="not the password").status_code == 422
    # The token endpoint counts for the same account and address (one throttle).
    for _ in range(3):
        grant = api.token(helpers.admin_email, "not the password", address=helpers.address)
        assert grant.status_code == 400
    refused = console.sign_in()  # the right password, but the pair is throttled now
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in refused.get_data(as_text=True)
    assert api.token(helpers.admin_email, address=helpers.address).status_code == 429


def test_the_next_page_is_only_ever_the_consoles_own(console: Console) -> None:
    for target, expected in [
        ("/admin/audit", "/admin/audit"),
        ("https://evil.example/admin", "/admin"),
        ("//evil.example/admin", "/admin"),
        ("/api/v1/users", "/admin"),
    ]:
        form = console.form("/admin/login", "/admin/login")
        response = console.client.post(
            f"/admin/login?next={target}",
            data={**form.fields, "email": "root@example.com", "password": console.api.password},
        )
        assert response.headers["Location"] == expected, target
        assert console.submit("/admin", "/admin/logout").status_code == 302


# -- CSRF -----------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused(
    signed_in: Console, api: UsersApi, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    page = f"/admin/users/{ada['id']}"
    action = f"/admin/users/{ada['id']}/roles"
    response = signed_in.submit(page, action, csrf=False, roles__roles=["admin"])
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    # A token of another session is refused too.
    from .conftest import Console as ConsoleClient

    other = ConsoleClient(users_app.test_client(), api)
    foreign = other.form("/admin/login", "/admin/login").fields["csrf_token"][0]
    forged = signed_in.client.post(
        action, data={"roles-csrf_token": foreign, "roles-roles": "admin"}
    )
    assert forged.status_code == 400
    assert api.body(api.client.get(f"/api/v1/users/{ada['id']}", headers=api.as_user(ada["id"])))[
        "roles"
    ] == ["customer"]
    assert [e["action"] for e in helpers.audit_rows(users_app)] == ["console.signed_in"]


def test_sign_in_needs_the_csrf_token_too(console: Console, users_app: Flask) -> None:
    response = console.client.post(
        "/admin/login", data={"email": "root@example.com", "password": console.api.password}
    )
    assert response.status_code == 400
    assert console_sessions(users_app) == []


# -- one user -------------------------------------------------------------------------------


def test_changing_roles_is_recorded_in_the_audit_trail(
    signed_in: Console, api: UsersApi, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    response = signed_in.submit(
        f"/admin/users/{ada['id']}", f"/admin/users/{ada['id']}/roles", roles__roles=["admin"]
    )
    assert response.status_code == 302
    page = signed_in.get(response.headers["Location"])
    assert "Roles of ada@example.com: admin" in helpers.text_of(page)
    event = helpers.audit_rows(users_app)[-1]
    assert event["action"] == "user.roles_set"
    assert event["actor"] == helpers.admin_email
    assert (
        str(event["actor_id"])
        == signed_in.api.body(
            api.client.get("/api/v1/users", headers=api.as_user(uuid.uuid4(), "admin"))
        )["items"][0]["id"]
    )
    assert (event["target_type"], event["target_id"], event["target"]) == (
        "user",
        ada["id"],
        "ada@example.com",
    )
    assert event["details"] == {"before": ["customer"], "after": ["admin"]}
    assert event["address"] == helpers.address
    assert event["request_id"]
    listed = signed_in.get("/admin/audit?action=user.roles_set")
    text = helpers.text_of(listed)
    assert "set a user's roles" in text
    assert "ada@example.com" in text
    assert helpers.address in text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "This field is required."),
        ("x" * 201, "between 1 and 200"),
        ("a\x00b", "cannot be stored"),
    ],
)
def test_a_bad_name_is_shown_next_to_its_field(
    signed_in: Console, api: UsersApi, helpers: ConsoleHelpers, value: str, message: str
) -> None:
    ada = api.register("ada@example.com")
    response = signed_in.submit(
        f"/admin/users/{ada['id']}", f"/admin/users/{ada['id']}/profile", profile__full_name=value
    )
    assert response.status_code == 422
    errors = helpers.field_errors(response, "profile-full_name")
    assert any(message in error for error in errors), errors
    assert 'aria-invalid="true"' in response.get_data(as_text=True)


def test_a_name_change_is_saved_escaped_and_audited(
    signed_in: Console, api: UsersApi, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    hostile = '<script>alert("x")</script>'
    response = signed_in.submit(
        f"/admin/users/{ada['id']}", f"/admin/users/{ada['id']}/profile", profile__full_name=hostile
    )
    assert response.status_code == 302
    for page in (f"/admin/users/{ada['id']}", "/admin", "/admin/users", "/admin/audit"):
        html = signed_in.get(page).get_data(as_text=True)
        assert hostile not in html
    assert "&lt;script&gt;" in signed_in.get("/admin/users").get_data(as_text=True)
    event = helpers.audit_rows(users_app)[-1]
    assert event["details"] == {"full_name": {"before": "Ada Lovelace", "after": hostile}}


def test_no_roles_at_all_is_refused_next_to_the_field(
    signed_in: Console, api: UsersApi, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    response = signed_in.submit(
        f"/admin/users/{ada['id']}", f"/admin/users/{ada['id']}/roles", roles__roles=[]
    )
    assert response.status_code == 422
    assert helpers.field_errors(response, "roles-roles") == ["Choose at least one role."]


def test_the_last_admin_keeps_the_role(
    signed_in: Console, admin: dict[str, Any], users_app: Flask, helpers: ConsoleHelpers
) -> None:
    page = f"/admin/users/{admin['id']}"
    response = signed_in.submit(page, f"{page}/roles", roles__roles=["customer"])
    assert response.status_code == 409
    assert "without an active admin" in helpers.text_of(response)
    disable = signed_in.submit(page, f"{page}/disable")
    assert disable.status_code == 409
    assert [e["action"] for e in helpers.audit_rows(users_app)] == ["console.signed_in"]


def test_disabling_a_user_revokes_their_refresh_tokens(
    signed_in: Console, api: UsersApi, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    refresh = api.body(api.token("ada@example.com"))["refresh_token"]
    page = f"/admin/users/{ada['id']}"
    assert "1 sign-in(s) with a live refresh token" in helpers.text_of(signed_in.get(page))
    response = signed_in.submit(page, f"{page}/disable")
    assert response.status_code == 302
    grant = api.form(
        "/api/v1/auth/token", {"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert grant.status_code == 400
    assert api.body(grant)["error"] == "invalid_grant"
    assert api.token("ada@example.com").status_code == 400
    event = helpers.audit_rows(users_app)[-1]
    assert event["action"] == "user.disabled"
    assert event["details"] == {"refresh_token_families_revoked": 1}
    enabled = signed_in.submit(page, f"{page}/enable")
    assert enabled.status_code == 302
    assert api.token("ada@example.com").status_code == 200
    assert helpers.audit_rows(users_app)[-1]["action"] == "user.enabled"


def test_sign_out_everywhere_revokes_every_refresh_token_family(
    signed_in: Console, api: UsersApi, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    refreshes = [api.body(api.token("ada@example.com"))["refresh_token"] for _ in range(3)]
    page = f"/admin/users/{ada['id']}"
    assert "3 sign-in(s) with a live refresh token" in helpers.text_of(signed_in.get(page))
    response = signed_in.submit(page, f"{page}/sign-out-everywhere")
    assert response.status_code == 302
    after = signed_in.get(page)
    assert "3 sign-in(s) revoked" in helpers.text_of(after)
    assert "0 sign-in(s) with a live refresh token" in helpers.text_of(after)
    for refresh in refreshes:
        grant = api.form(
            "/api/v1/auth/token", {"grant_type": "refresh_token", "refresh_token": refresh}
        )
        assert api.body(grant)["error"] == "invalid_grant"
    # Signing in again works: the account itself is untouched.
    assert api.token("ada@example.com").status_code == 200
    event = helpers.audit_rows(users_app)[-1]
    assert event["action"] == "user.signed_out_everywhere"
    assert event["details"] == {"refresh_token_families_revoked": 3, "console_sessions_ended": 0}


def test_an_unknown_user_is_a_404_page(signed_in: Console) -> None:
    response = signed_in.get(f"/admin/users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "No such user." in response.get_data(as_text=True)


def test_without_the_orders_api_the_user_page_says_so(
    signed_in: Console, admin: dict[str, Any], helpers: ConsoleHelpers
) -> None:
    page = signed_in.get(f"/admin/users/{admin['id']}")
    assert page.status_code == 200
    assert "Orders cannot be shown right now" in helpers.text_of(page)


# -- lists ----------------------------------------------------------------------------------


def test_the_user_list_filters_and_pages(
    signed_in: Console, api: UsersApi, helpers: ConsoleHelpers
) -> None:
    for n in range(27):
        api.register(f"shopper{n:02}@example.com")
    api.register("other@example.org")
    first = signed_in.get("/admin/users?email_prefix=SHOPPER")
    emails = re.findall(r">(shopper\d\d@example\.com)</a>", first.get_data(as_text=True))
    assert emails == [f"shopper{n:02}@example.com" for n in range(25)]
    [next_link] = re.findall(r'href="([^"]+)" rel="next"', first.get_data(as_text=True))
    second = signed_in.get(next_link.replace("&amp;", "&"))
    emails = re.findall(r">(shopper\d\d@example\.com)</a>", second.get_data(as_text=True))
    assert emails == ["shopper25@example.com", "shopper26@example.com"]
    assert 'rel="next"' not in second.get_data(as_text=True)
    admins = helpers.text_of(signed_in.get("/admin/users?role=admin"))
    assert "root@example.com" in admins
    assert "shopper00" not in admins
    bad_role = signed_in.get("/admin/users?role=superuser")
    assert bad_role.status_code == 422
    assert helpers.field_errors(bad_role, "role") == ["Not a valid choice."]
    bad_cursor = signed_in.get("/admin/users?cursor=garbage")
    assert bad_cursor.status_code == 422
    assert "not valid any more" in helpers.text_of(bad_cursor)


def test_the_dashboard_counts_accounts_by_role_and_status(
    signed_in: Console, api: UsersApi, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    api.register("bob@example.com")
    signed_in.submit(f"/admin/users/{ada['id']}", f"/admin/users/{ada['id']}/disable")
    html = signed_in.get("/admin").get_data(as_text=True)
    found = re.findall(
        r'role=(\w+)">\w+</a></th>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>',
        html,
    )
    rows = {role: (active, disabled) for role, active, disabled in found}
    assert rows == {"customer": ("2", "1"), "admin": ("1", "0")}
    recent = re.findall(r">([a-z]+@example\.com)</a>", html)
    assert recent == ["bob@example.com", "ada@example.com", "root@example.com"]


def test_the_audit_log_filters(signed_in: Console, api: UsersApi, helpers: ConsoleHelpers) -> None:
    ada = api.register("ada@example.com")
    page = f"/admin/users/{ada['id']}"
    signed_in.submit(page, f"{page}/roles", roles__roles=["admin", "customer"])
    signed_in.submit(page, f"{page}/disable")

    def actions(query: str) -> list[str]:
        html = signed_in.get(f"/admin/audit?{query}").get_data(as_text=True)
        return re.findall(r"<code>((?:user|console|client)\.[a-z_]+)</code>", html)

    assert actions("") == ["user.disabled", "user.roles_set", "console.signed_in"]
    assert actions("action=user.disabled") == ["user.disabled"]
    assert actions(f"target={ada['id']}") == ["user.disabled", "user.roles_set"]
    assert actions("target=ada@") == ["user.disabled", "user.roles_set"]
    assert actions("actor=root@") == ["user.disabled", "user.roles_set", "console.signed_in"]
    assert actions("actor=someone.else") == []
    today = datetime.now(UTC).date()
    assert len(actions(f"since={today}&until={today}")) == 3
    assert actions(f"since={today + timedelta(days=1)}") == []
    bad = signed_in.get(f"/admin/audit?since={today}&until={today - timedelta(days=1)}")
    assert bad.status_code == 422
    assert helpers.field_errors(bad, "until") == ["Must not be before the first day."]
    assert signed_in.get("/admin/audit?since=yesterday").status_code == 422


def test_admin_changes_through_the_api_are_audited_too(
    api: UsersApi, admin: dict[str, Any], users_app: Flask, helpers: ConsoleHelpers
) -> None:
    ada = api.register("ada@example.com")
    response = api.client.patch(
        f"/api/v1/users/{ada['id']}",
        json={"full_name": "Countess"},
        headers={**api.as_user(admin["id"], "admin"), "X-Forwarded-For": "192.0.2.9"},
    )
    assert response.status_code == 200
    [event] = helpers.audit_rows(users_app)
    assert (event["actor"], event["action"], event["address"]) == (
        helpers.admin_email,
        "user.updated",
        "192.0.2.9",
    )


# -- OAuth clients and keys -----------------------------------------------------------------


def test_a_client_is_created_with_its_secret_shown_once(
    signed_in: Console, api: UsersApi, users_app: Flask, helpers: ConsoleHelpers
) -> None:
    created = signed_in.submit(
        "/admin/clients",
        "/admin/clients",
        client_id="reports",
        scopes="orders:read users:read",
        description="Nightly reports",
    )
    assert created.status_code == 201
    secret = re.search(r'id="client-secret"[^>]*value="([^"]+)"', created.get_data(as_text=True))
    assert secret is not None
    assert created.headers["Cache-Control"] == "no-store"
    grant = api.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=("reports", secret[1]),
    )
    assert grant.status_code == 200, grant.get_data(as_text=True)
    listing = signed_in.get("/admin/clients").get_data(as_text=True)
    assert "reports" in listing
    assert secret[1] not in listing
    event = helpers.audit_rows(users_app)[-1]
    assert event["action"] == "client.created"
    assert secret[1] not in str(event)

    rotated = signed_in.submit("/admin/clients", "/admin/clients/reports/rotate")
    assert rotated.status_code == 200
    new_secret = re.search(
        r'id="client-secret"[^>]*value="([^"]+)"', rotated.get_data(as_text=True)
    )
    assert new_secret is not None
    old = api.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("reports", secret[1]),
    )
    assert old.status_code == 401
    new = api.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("reports", new_secret[1]),
    )
    assert new.status_code == 200

    deleted = signed_in.submit("/admin/clients", "/admin/clients/reports/delete")
    assert deleted.status_code == 302
    with resources(users_app).sessions.begin() as session:
        assert session.get(ServiceClient, "reports") is None
    assert [e["action"] for e in helpers.audit_rows(users_app)][-3:] == [
        "client.created",
        "client.secret_rotated",
        "client.deleted",
    ]


@pytest.mark.parametrize(
    ("values", "field", "status", "message"),
    [
        ({"client_id": "Reports!"}, "client_id", 422, "2 to 64 of a-z"),
        ({"client_id": ""}, "client_id", 422, "This field is required."),
        ({"client_id": "ok-id", "scopes": 'bad"scope'}, "scopes", 422, "Not scope tokens"),
        ({"client_id": "taken"}, "client_id", 409, "A client with this id exists."),
    ],
)
def test_a_bad_client_is_refused_next_to_its_field(
    *,
    signed_in: Console,
    helpers: ConsoleHelpers,
    values: dict[str, str],
    field: str,
    status: int,
    message: str,
) -> None:
    assert (
        signed_in.submit("/admin/clients", "/admin/clients", client_id="taken").status_code == 201
    )
    response = signed_in.submit("/admin/clients", "/admin/clients", **values)
    assert response.status_code == status
    errors = helpers.field_errors(response, field)
    assert any(message in error for error in errors), errors


def test_the_keys_page_shows_which_key_signs_and_which_are_published(
    make_app: AppFactory, key_dirs: dict[str, Any], api: UsersApi, admin: dict[str, Any]
) -> None:
    from .conftest import Console as ConsoleClient

    app = make_app(jwt_signing_keys_dir=key_dirs["rotated"])
    console = ConsoleClient(app.test_client(), api)
    assert console.sign_in().status_code == 302
    html = console.get("/admin/keys").get_data(as_text=True)
    rows = re.findall(r"<tr>\s*<td><code>([\w-]+)</code></td>(.*?)</tr>", html, re.S)
    assert [kid for kid, _ in rows] == ["2026-06-01", "2026-01-01"]
    newest, oldest = rows[0][1], rows[1][1]
    assert "signs new tokens" in newest
    assert "signs new tokens" not in oldest
    assert newest.count("in the JWKS") == oldest.count("in the JWKS") == 1
    thumbprints = re.findall(r'<code class="wrap">([A-Za-z0-9_-]{43})</code>', html)
    assert len(set(thumbprints)) == 2


# -- every page -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/admin/login", "/admin/nothing-here"])
def test_every_page_carries_the_security_headers(signed_in: Console, path: str) -> None:
    if path == "/admin/login":
        signed_in.submit("/admin", "/admin/logout")
    response = signed_in.get(path)
    assert response.status_code in {200, 404}
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    # Nothing the policy would refuse: no inline script, style or handler, nothing remote.
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert " style=" not in html
    assert "<style" not in html
    assert re.findall(r"\son[a-z]+=", html) == []
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []


def test_assets_are_served_by_the_service_and_cached_by_their_hash(signed_in: Console) -> None:
    html = signed_in.get("/admin").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/admin/static/[^"]+)"', html)
    assert len(assets) == 3
    for url in assets:
        response = signed_in.get(url.replace("&amp;", "&"))
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    unversioned = signed_in.get("/admin/static/console.css")
    assert unversioned.headers["Cache-Control"] == "no-cache"


def test_every_input_has_a_label(signed_in: Console, api: UsersApi, admin: dict[str, Any]) -> None:
    for path in [*PAGES, f"/admin/users/{admin['id']}"]:
        html = signed_in.get(path).get_data(as_text=True)
        labelled = set(re.findall(r'<label for="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag or 'type="submit"' in tag:
                continue
            field_id = re.search(r'id="([^"]+)"', tag)
            assert field_id is not None, (path, tag)
            assert field_id[1] in labelled, (path, tag)


def test_the_api_does_not_vary_by_the_consoles_cookie(signed_in: Console) -> None:
    jwks = signed_in.client.get("/.well-known/jwks.json")
    assert "Cookie" not in jwks.headers.get("Vary", "")
    assert "Set-Cookie" not in jwks.headers
    assert "Cookie" in signed_in.get("/admin").headers["Vary"]


def test_a_database_outage_is_a_503_page(
    make_app: AppFactory, dead_database_url: str, api: UsersApi
) -> None:
    from .conftest import Console as ConsoleClient

    app = make_app(database_url=dead_database_url)
    console = ConsoleClient(app.test_client(), api)
    response = console.sign_in()
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"] == "1"
    assert "The database could not answer" in response.get_data(as_text=True)
