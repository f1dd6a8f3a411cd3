"""Fixtures of the console's tests: a browser-like client that reads the forms of the pages
it gets and posts them back as a browser would (with their CSRF tokens), and accounts."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shopstack_users.resources import resources

if TYPE_CHECKING:
    from conftest import UsersApi

ADMIN_EMAIL = "root@example.com"
# The address the gateway hands on as the client's (the login throttle's key).
ADDRESS = "198.51.100.20"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, list[str]]


class FormParser(HTMLParser):
    """The forms of a page: their action, method and the values a browser would send."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(
                action=found.get("action", ""), method=found.get("method", "get"), fields={}
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and "name" in found:
            kind = found.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in found:
                return
            if kind == "submit":
                return
            self._current.fields.setdefault(found["name"], []).append(found.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms_of(response: TestResponse) -> list[Form]:
    parser = FormParser()
    parser.feed(response.get_data(as_text=True))
    return parser.forms


class Console:
    """A client of the console that behaves like a browser: cookies, forms, CSRF tokens."""

    def __init__(self, client: FlaskClient, api: UsersApi) -> None:
        self.client = client
        self.api = api

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("headers", {"X-Forwarded-For": ADDRESS})
        return self.client.get(path, **kwargs)

    def form(self, page: str, action: str) -> Form:
        """The form posting to ``action`` on ``page``, as the page offers it."""
        response = self.get(page)
        assert response.status_code == 200, response.get_data(as_text=True)
        for form in forms_of(response):
            if form.action.split("?")[0] == action:
                return form
        raise AssertionError(f"no form for {action} on {page}")

    def submit(
        self, page: str, action: str, *, csrf: bool = True, **values: str | list[str]
    ) -> TestResponse:
        """Fill in the form for ``action`` on ``page`` and send it, as a browser would."""
        form = self.form(page, action)
        data: dict[str, Any] = dict(form.fields)
        for name, value in values.items():
            data[name.replace("__", "-")] = value
        if not csrf:
            data = {k: v for k, v in data.items() if not k.endswith("csrf_token")}
        return self.client.post(form.action, data=data, headers={"X-Forwarded-For": ADDRESS})

    def sign_in(self, email: str = ADMIN_EMAIL, password: str | None = None) -> TestResponse:
        return self.submit(
            "/admin/login",
            "/admin/login",
            email=email,
            password=password or self.api.password,
        )

    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie("shopstack_console", path="/admin")
        return cookie.value if cookie else None


@pytest.fixture
def admin(api: UsersApi) -> dict[str, Any]:
    return api.admin(ADMIN_EMAIL)


@pytest.fixture
def console(client: FlaskClient, api: UsersApi, admin: dict[str, Any]) -> Console:
    return Console(client, api)


@pytest.fixture
def signed_in(console: Console) -> Console:
    response = console.sign_in()
    assert response.status_code == 302, response.get_data(as_text=True)
    return console


def text_of(response: TestResponse) -> str:
    """The page's text without tags or repeated spaces, for looking for sentences."""
    html = response.get_data(as_text=True)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def field_errors(response: TestResponse, field_id: str) -> list[str]:
    """The errors shown next to the field with this id."""
    html = response.get_data(as_text=True)
    found = re.search(rf'<ul class="field-errors" id="{field_id}-errors">(.*?)</ul>', html, re.S)
    if found is None:
        return []
    return [re.sub(r"\s+", " ", item).strip() for item in re.findall(r"<li>(.*?)</li>", found[1])]


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    """Every audit event, oldest first."""
    from sqlalchemy import select

    from shopstack_users.audit.models import AuditEvent

    with resources(app).sessions.begin() as session:
        events = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
        return [
            {
                "actor": e.actor,
                "actor_id": e.actor_id,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "target": e.target,
                "details": e.details,
                "address": e.address,
                "request_id": e.request_id,
            }
            for e in events
        ]


@dataclass(frozen=True)
class ConsoleHelpers:
    text_of = staticmethod(text_of)
    field_errors = staticmethod(field_errors)
    audit_rows = staticmethod(audit_rows)
    forms_of = staticmethod(forms_of)
    address = ADDRESS
    admin_email = ADMIN_EMAIL

    @staticmethod
    def user_id(user: dict[str, Any]) -> uuid.UUID:
        return uuid.UUID(user["id"])


@pytest.fixture
def helpers() -> ConsoleHelpers:
    return ConsoleHelpers()
