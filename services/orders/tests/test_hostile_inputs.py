"""Every field of the orders document, sent hostile values, in process on the real
PostgreSQL and Redis: a bad value is a 4xx problem+json naming the field, never a 500
(``shopstack_devstack.hostile_inputs`` derives the cases from the served /openapi.json, so
a new field is covered without a line here). First each case once, then hypothesis draws
further values of each kind: both tests are that module's, collected here with this
service's ``send`` and ``found``."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import anyio.from_thread
import httpx
import pytest

from shopstack_devstack.hostile_inputs import (
    Case,
    Request,
    SendRequest,
    served_cases,
    test_every_field_refuses_every_kind_of_hostile_value,
    test_hostile_values_drawn_by_hypothesis_are_refused_by_field,
)
from shopstack_orders.main import create_app

from .conftest import ADMIN, SettingsFactory


@pytest.fixture
def send(make_settings: SettingsFactory) -> Iterator[SendRequest]:
    """Requests to an orders app as an administrator (who may call every operation), from
    synchronous code: the app and its client run on an event loop in a thread of their own."""
    app = create_app(make_settings())
    headers = ADMIN.to_headers()
    with anyio.from_thread.start_blocking_portal() as portal:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders", timeout=60
        )
        with (
            portal.wrap_async_context_manager(app.router.lifespan_context(app)),
            portal.wrap_async_context_manager(client),
        ):

            def send(request: Request) -> tuple[int, str | None, bytes]:
                call = functools.partial(
                    client.request,
                    request.method,
                    request.url,
                    content=request.body,
                    headers=headers
                    | ({"Content-Type": request.content_type} if request.content_type else {}),
                )
                response = portal.call(call)
                return response.status_code, response.headers.get("content-type"), response.content

            yield send


@pytest.fixture
def found(send: SendRequest) -> list[Case]:
    return served_cases(send)


__all__ = [
    "test_every_field_refuses_every_kind_of_hostile_value",
    "test_hostile_values_drawn_by_hypothesis_are_refused_by_field",
]
