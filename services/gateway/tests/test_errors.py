"""An unexpected error anywhere is a problem+json 500 with the request id, never a stack trace."""

from __future__ import annotations

from typing import Any

import pytest

from shopstack_gateway.openapi import OpenAPIMerger
from shopstack_gateway.proxy import Proxy

from .conftest import NOWHERE, GatewayFactory


async def broken(*_: Any, **__: Any) -> None:
    raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("target", "path"),
    [(OpenAPIMerger, "/openapi.json"), (Proxy, "/api/v1/products")],
    ids=["own route", "proxied route"],
)
async def test_an_unexpected_error_is_a_500_problem(
    make_gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: type,
    path: str,
) -> None:
    monkeypatch.setattr(target, "document" if target is OpenAPIMerger else "__call__", broken)
    nowhere = NOWHERE
    async with make_gateway({"users": nowhere, "orders": nowhere}) as client:
        response = await client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/internal-error"
    assert "a bug" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
    log = capsys.readouterr().out
    assert log.count("RuntimeError: a bug") == 1  # logged once, with its traceback
