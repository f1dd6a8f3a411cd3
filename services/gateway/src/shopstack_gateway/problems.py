"""Errors the gateway makes itself, written straight to ASGI ``send`` as problem+json.

The hot path (auth, rate limit, proxy) runs below Starlette's routing, so it cannot raise
``ProblemError`` for a handler to catch; it answers through here instead. The request id is in
every body (``problem_body`` adds it), and the request-context middleware adds the header.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from shopstack_common.asgi import Send
from shopstack_common.problem import PROBLEM_CONTENT_TYPE, problem_body, problem_type

_CONTENT_TYPE = (b"content-type", PROBLEM_CONTENT_TYPE.encode())


async def send_problem(
    send: Send,
    status: int,
    *,
    slug: str | None = None,
    type_: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> None:
    body = json.dumps(
        problem_body(
            status,
            title=title,
            detail=detail,
            type_=type_ or (problem_type(slug) if slug else None),
            extra=extra,
        )
    ).encode()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw_headers = [_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
    raw_headers += [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
