"""One error handler turns every HTTP error into the shared problem+json shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException, InternalServerError

from shopstack_common.problem import PROBLEM_CONTENT_TYPE, FieldError, problem_body, problem_type

logger = logging.getLogger(__name__)

# webargs names where a value came from; clients know these as the parts of a request.
_LOCATIONS = {
    "json": "body",
    "form": "form",
    "query": "query",
    "view_args": "path",
    "headers": "header",
}


class ProblemError(HTTPException):
    """Abort a request with a specific problem: ``raise ProblemError(409, slug=...)``."""

    def __init__(
        self,
        status: int,
        *,
        slug: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.slug = slug
        self.title = title
        self.errors = errors
        self.extra_headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body = problem_body(
        status,
        title=title,
        detail=detail,
        type_=problem_type(slug) if slug else None,
        errors=errors,
        extra=extra,
    )
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    response.headers.update(headers or {})
    return response


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested ``{"field": ["msg"]}`` (and ``{0: {...}}`` for list items) as pairs."""
    pairs: list[tuple[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(_flatten(value, name))
    elif isinstance(messages, list | tuple):
        for message in messages:
            pairs.extend(_flatten(message, prefix))
    else:
        pairs.append((prefix, str(messages)))
    return pairs


def validation_errors(messages: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for location_key, by_field in messages.items():
        location = _LOCATIONS.get(location_key, location_key)
        for field, message in _flatten(by_field):
            errors.append({"field": field or location, "location": location, "message": message})
    return errors


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if isinstance(error, ProblemError):
        return problem_response(
            status,
            slug=error.slug,
            title=error.title,
            detail=error.description,
            errors=error.errors,
            headers=error.extra_headers,
            extra=error.extra,
        )
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and isinstance(messages, Mapping):
        errors = validation_errors(messages)
        names = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            422,
            slug="validation",
            title="Invalid request",
            detail=f"Invalid fields: {names}",
            errors=errors,
        )
    detail = error.description if error.description != type(error).description else None
    headers = dict(error.get_headers()) if status in {405, 429} else {}
    headers.pop("Content-Type", None)
    return problem_response(status, detail=detail, headers=headers)


def _handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return _handle_http_exception(error)
    logger.exception("unhandled error")
    return problem_response(500, detail=InternalServerError.description)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
