"""Every field of the users document, sent hostile values, in process on the real
PostgreSQL and Redis: a bad value is a 4xx problem+json naming the field (the token
endpoint: its OAuth error), never a 500. ``shopstack_devstack.hostile_inputs`` derives the
cases from the served /openapi.json, so a new field is covered without a line here. First
each case once, then hypothesis draws further values of each kind: both tests are that
module's, collected here with this service's ``send`` and ``found``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from flask.testing import FlaskClient

from shopstack_devstack.hostile_inputs import (
    Case,
    Request,
    SendRequest,
    served_cases,
    test_every_field_refuses_every_kind_of_hostile_value,
    test_hostile_values_drawn_by_hypothesis_are_refused_by_field,
)

if TYPE_CHECKING:
    from conftest import UsersApi


@pytest.fixture
def send(client: FlaskClient, api: UsersApi) -> SendRequest:
    """Requests as an administrator (who may call every operation) with an account."""
    headers = api.as_user(api.admin()["id"], "admin", "customer")

    def send(request: Request) -> tuple[int, str | None, bytes]:
        response = client.open(
            request.url,
            method=request.method,
            data=request.body,
            content_type=request.content_type,
            headers=headers,
        )
        return response.status_code, response.headers.get("Content-Type"), response.data

    return send


@pytest.fixture
def found(send: SendRequest) -> list[Case]:
    return served_cases(send)


__all__ = [
    "test_every_field_refuses_every_kind_of_hostile_value",
    "test_hostile_values_drawn_by_hypothesis_are_refused_by_field",
]
