"""Per-request context that log lines and error bodies read without threading it through calls."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"

# Accept a caller's id only when it is short and plain, so it can be logged and echoed safely.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class RequestContext:
    """What is known about the request being served. ``fields`` is mutable on purpose: code deep
    in a request (an auth check, a proxy) adds to it and the access log line picks it up, even
    when that code ran in another task or thread with a copy of the context."""

    request_id: str
    fields: dict[str, Any] = field(default_factory=dict)


request_context_var: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(candidate: str | None) -> str:
    """Keep the caller's X-Request-ID when it is well formed; otherwise make a new one."""
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return new_request_id()


def current_request_id() -> str | None:
    context = request_context_var.get()
    return context.request_id if context else None


def annotate_request(**fields: Any) -> None:
    """Attach fields (user_id, upstream, ...) to the current request's access log line."""
    context = request_context_var.get()
    if context is not None:
        context.fields.update(fields)


def request_field(name: str) -> Any:
    context = request_context_var.get()
    return context.fields.get(name) if context else None
