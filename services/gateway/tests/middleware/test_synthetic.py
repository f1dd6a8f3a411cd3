"""Requests marked with X-Synthetic-Source carry the source in their log fields and are counted
by it; the label takes only known sources, anything else is "other"."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from shopstack_common.asgi import Receive, RequestContextMiddleware, Scope, Send
from shopstack_common.context import request_context_var
from shopstack_gateway.middleware.synthetic import SyntheticTrafficMiddleware


class Inner:
    """Answers 204 and remembers the log fields of the request it served."""

    def __init__(self) -> None:
        self.fields: dict[str, object] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = request_context_var.get()
        self.fields = dict(context.fields) if context else {}
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _count(source: str) -> float:
    labels = {"source": source, "status_class": "2xx"}
    return REGISTRY.get_sample_value("shopstack_gateway_synthetic_requests_total", labels) or 0.0


async def _send(headers: dict[str, str]) -> Inner:
    inner = Inner()
    app = RequestContextMiddleware(SyntheticTrafficMiddleware(inner))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/x", headers=headers)).status_code == 204
    return inner


@pytest.mark.parametrize(
    ("sent", "source"),
    [("load", "load"), ("LOAD ", "load"), ("faults", "faults"), ("my-own-tool", "other")],
)
async def test_a_marked_request_is_logged_and_counted_by_its_source(sent: str, source: str) -> None:
    before = _count(source)
    inner = await _send({"X-Synthetic-Source": sent})
    assert inner.fields["synthetic"] == source
    assert _count(source) == before + 1


async def test_an_unmarked_request_is_neither() -> None:
    before = {source: _count(source) for source in ("load", "faults", "probe", "other")}
    inner = await _send({})
    assert "synthetic" not in inner.fields
    assert {source: _count(source) for source in before} == before
