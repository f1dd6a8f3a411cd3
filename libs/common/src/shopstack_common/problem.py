"""RFC 9457 problem details: the one error shape every service and the gateway answer with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypedDict

from shopstack_common.context import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://shopstack.dev/problems/"


class FieldError(TypedDict, total=False):
    """One invalid input: the field (``items[0].quantity``), where it came from (``body``,
    ``query``, ``path``, ``header``, ``form``) and what is wrong with it."""

    field: str
    message: str
    location: str
    code: str


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str | None = None,
    errors: Sequence[FieldError] | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a problem+json document; ``type`` defaults to ``about:blank`` as RFC 9457 says."""
    try:
        default_title = HTTPStatus(status).phrase
    except ValueError:
        default_title = "Error"
    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title or default_title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return body
