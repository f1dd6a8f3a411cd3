"""The admin console in headless Chromium, against `make up` through NGINX and the gateway.

Each test opens a fresh browser context (no cookies), signs in as the development admin that
`make up` creates, and leaves a screenshot of every page it sees under
``test-results/browser/<test>/`` (laptop and phone size). Every page is checked for console
errors and Content-Security-Policy violations.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from shopstack_devstack.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD

if TYPE_CHECKING:
    from tests.e2e.browser.conftest import PageWatch

pytestmark = pytest.mark.browser

PASSWORD = "a long enough secret"


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    """The platform's API through NGINX, as any client reaches it."""
    with httpx.Client(base_url=base_url, timeout=15) as client:
        yield client


def register(api: httpx.Client, name: str) -> dict[str, Any]:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    response = api.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": name.title()},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def password_grant(api: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return api.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )


def sign_in(page: Page, email: str = DEV_ADMIN_EMAIL, password: str = DEV_ADMIN_PASSWORD) -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def open_user(page: Page, email: str) -> None:
    """Find the user by the start of their email, as an operator would, and open them."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Users").click()
    page.get_by_label("Email starts with").fill(email.split("@", maxsplit=1)[0])
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=email).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(email)


def test_sign_in_wrong_then_right_and_see_the_dashboard(watch: PageWatch) -> None:
    page = watch.page
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin$"))
    watch.capture("sign-in")
    # Keyboard only: the email field has the focus, Tab reaches the password, Enter sends.
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(DEV_ADMIN_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    watch.expect_status(422)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    watch.capture("sign-in-refused")
    page.get_by_label("Password").fill(DEV_ADMIN_PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.get_by_role("heading", name="Accounts by role and status")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {DEV_ADMIN_EMAIL}")
    watch.capture("dashboard")
    cookie = next(c for c in page.context.cookies() if c["name"] == "shopstack_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/admin"
    assert cookie["expires"] == -1  # a browser-session cookie; the server times it out
    # The first Tab from the top of a page reaches the skip link.
    page.locator("body").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_find_a_user_change_their_role_and_see_it_in_the_audit_log(
    watch: PageWatch, api: httpx.Client
) -> None:
    customer = register(api, "grace")
    page = watch.page
    sign_in(page)
    page.get_by_role("link", name="Users").click()
    watch.capture("users")
    open_user(page, customer["email"])
    watch.capture("user")
    page.get_by_label("admin", exact=True).check()
    page.get_by_role("button", name="Save roles").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Roles of {customer['email']}: admin, customer"
    )
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option(label="set a user's roles")
    page.get_by_label("On (email or client id starts with, or an id)").fill(customer["email"])
    page.get_by_role("button", name="Filter").click()
    row = page.locator("table.audit tbody tr").first
    expect(row).to_contain_text(DEV_ADMIN_EMAIL)
    expect(row).to_contain_text(customer["email"])
    expect(row).to_contain_text('["admin", "customer"]')
    expect(row).to_contain_text("127.0.0.1")
    watch.capture("audit-log")


def test_a_disabled_users_refresh_token_fails_at_the_token_endpoint(
    watch: PageWatch, api: httpx.Client
) -> None:
    customer = register(api, "linus")
    issued = password_grant(api, customer["email"])
    assert issued.status_code == 200, issued.text
    refresh_token = issued.json()["refresh_token"]
    page = watch.page
    sign_in(page)
    open_user(page, customer["email"])
    expect(page.get_by_text("1 sign-in(s) with a live refresh token")).to_be_visible()
    page.get_by_role("button", name="Disable account").click()  # confirmed (dialog)
    expect(page.get_by_role("status")).to_contain_text("is disabled")
    watch.capture("user-disabled")
    refreshed = api.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert password_grant(api, customer["email"]).json()["error"] == "invalid_grant"


def test_an_oauth_clients_secret_works_in_a_client_credentials_grant(
    watch: PageWatch, api: httpx.Client
) -> None:
    client_id = f"reports-{uuid.uuid4().hex[:6]}"
    page = watch.page
    sign_in(page)
    page.get_by_role("link", name="OAuth clients").click()
    watch.capture("clients")
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Scopes").fill("orders:read")
    page.get_by_label("Description").fill("Nightly reports")
    page.get_by_role("button", name="Create client").click()
    secret_field = page.get_by_label("Client secret")
    expect(secret_field).to_be_visible()
    secret = secret_field.input_value()
    watch.capture("client-secret")
    grant = api.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=(client_id, secret),
    )
    assert grant.status_code == 200, grant.text
    token = grant.json()["access_token"]
    orders = api.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert orders.status_code == 200, orders.text
    page.get_by_role("link", name="Back to the clients").click()
    expect(page.locator("table")).to_contain_text(client_id)
    assert secret not in page.content()


def test_the_signing_keys_page_names_the_signing_and_published_keys(watch: PageWatch) -> None:
    page = watch.page
    sign_in(page)
    page.get_by_role("link", name="Signing keys").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("signs new tokens")
    expect(rows.first).to_contain_text("in the JWKS")
    watch.capture("signing-keys")


def test_a_user_page_shows_their_orders_read_from_the_orders_api(
    watch: PageWatch, api: httpx.Client
) -> None:
    admin = password_grant(api, DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD).json()["access_token"]
    product = api.post(
        "/api/v1/products",
        json={
            "sku": f"TEA-{uuid.uuid4().hex[:6]}",
            "name": "Assam",
            "price": 450,
            "currency": "EUR",
            "stock": 5,
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert product.status_code == 201, product.text
    customer = register(api, "ada")
    token = password_grant(api, customer["email"]).json()["access_token"]
    order = api.post(
        "/api/v1/orders",
        json={"items": [{"product_id": product.json()["id"], "quantity": 2}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert order.status_code == 201, order.text
    page = watch.page
    sign_in(page)
    open_user(page, customer["email"])
    orders = page.locator("section", has=page.get_by_role("heading", name="Recent orders"))
    expect(orders).to_contain_text(order.json()["id"])
    expect(orders).to_contain_text("900 EUR")
    watch.capture("user-with-orders")


def test_a_form_posted_without_its_csrf_token_is_refused(
    watch: PageWatch, api: httpx.Client
) -> None:
    customer = register(api, "mallory")
    page = watch.page
    sign_in(page)
    open_user(page, customer["email"])
    roles_form = page.locator("form", has=page.get_by_role("button", name="Save roles"))
    roles_form.locator("input[name$='csrf_token']").evaluate("input => input.remove()")
    page.get_by_label("admin", exact=True).check()
    watch.expect_status(400)
    page.get_by_role("button", name="Save roles").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Malformed request")
    expect(page.locator("main")).to_contain_text("The CSRF token is missing.")
    watch.capture("csrf-refused")
    page.goto("/admin")
    open_user(page, customer["email"])
    expect(page.locator("dl.facts")).to_contain_text("customer")
    expect(page.locator("dl.facts")).not_to_contain_text("admin")


def test_a_customer_cannot_open_the_console(watch: PageWatch, api: httpx.Client) -> None:
    customer = register(api, "eve")
    page = watch.page
    watch.expect_status(422)
    sign_in(page, customer["email"], PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("may not use the console")
    watch.capture("customer-refused")
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/admin/login"))
    # Neither a customer's bearer token nor identity headers of its own open it: the console
    # reads its own session only, and the gateway strips X-Shopstack-* from every client.
    token = password_grant(api, customer["email"]).json()["access_token"]
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"X-Shopstack-User-Id": customer["id"], "X-Shopstack-Roles": "admin"},
    ):
        response = api.get("/admin/users", headers=headers, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"].startswith("/admin/login")
        # Rate-limited by address, like every request without a (valid) token.
        assert "RateLimit-Policy" in response.headers


def test_the_csp_check_sees_a_violation(watch: PageWatch) -> None:
    """The check the other tests rely on can fail: an inline script is refused by the
    console's policy, and the refusal is seen."""
    page = watch.page
    page.goto("/admin/login")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
        }"""
    )
    assert page.evaluate("window.injected === undefined")
    page.wait_for_function("window.__cspViolations.length > 0")
    assert watch.csp_violations()[0].startswith("script-src")
    with pytest.raises(AssertionError, match="CSP"):
        watch.assert_clean()
    watch.errors.clear()
    page.evaluate("window.__cspViolations = []")
