"""The Flask side of the platform's plumbing: problem+json for every error (a retryable
database failure included) and the ops routes. The users service installs it; it mirrors
``fastapi_adapter``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import IO, Any, cast

from flask import Blueprint, Flask, Request, Response, json, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from shopstack_common.database_errors import (
    BURST_KEY,
    DATABASE_ERROR_TYPES,
    database_unavailable,
    is_retryable,
)
from shopstack_common.health import HEALTHY_BODY, SyncCheck, readiness, run_checks_sync
from shopstack_common.logs import BurstLogger
from shopstack_common.metrics import negotiated_payload
from shopstack_common.problems import (
    INTERNAL_ERROR,
    PROBLEM_CONTENT_TYPE,
    FieldError,
    ProblemError,
    problem_body,
    problem_for_status,
    validation_error,
)
from shopstack_common.urlencoded import refuse_undecodable

logger = logging.getLogger("shopstack.errors")

# webargs names where a value came from; clients know these as the parts of a request.
_LOCATIONS = {
    "json": "body",
    "form": "form",
    "query": "query",
    "view_args": "path",
    "headers": "header",
    "cookies": "cookie",
}


class _BodyAtMost(LimitedStream):
    """A streamed body read up to ``max_content_length``. werkzeug's own stream stops at the
    limit as if the body ended there, so a chunked body one byte too long reaches the parser
    cut short (a 400 of broken JSON or form data, or worse, a shorter value accepted); this
    one looks one byte past the limit and answers 413 when the body goes on."""

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return data

    def readinto(self, b: bytearray) -> int | None:  # type: ignore[override]
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return super().readinto(b)


class BoundedRequest(Request):
    """Flask's request, whose body over ``MAX_CONTENT_LENGTH`` is a 413 however it is sent:
    with a ``Content-Length`` (werkzeug checks that up front) or chunked, without one; and
    whose query string and form body must be UTF-8 text (``shopstack_common.urlencoded``:
    werkzeug would keep the percent-escapes of other bytes as if they were the text).
    Install it as the app's ``request_class``."""

    @cached_property
    def args(self) -> MultiDict[str, str]:
        refuse_undecodable(self.query_string, "query")
        return super().args

    def _load_form_data(self) -> None:
        if "form" not in self.__dict__ and self.mimetype == "application/x-www-form-urlencoded":
            refuse_undecodable(self.get_data(cache=True), "form")
        super()._load_form_data()

    @cached_property
    def stream(self) -> IO[bytes]:
        stream = super().stream
        if isinstance(stream, LimitedStream) and self.content_length is None:
            # Bounded by the maximum, not by a Content-Length (reading past one could wait on
            # the next request of a kept-alive connection).
            return cast(IO[bytes], _BodyAtMost(self.input_stream, stream.limit, is_max=True))
        return stream


def problem_response(error: ProblemError) -> Response:
    response = Response(
        json.dumps(error.body()), status=error.status, mimetype=PROBLEM_CONTENT_TYPE
    )
    response.headers.update(error.headers)
    return response


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested ``{"field": ["msg"]}`` (and ``{0: {...}}`` for list items) as pairs."""
    pairs: list[tuple[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            elif key == "_schema":  # marshmallow's key for what is wrong with the whole object
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(_flatten(value, name))
    elif isinstance(messages, list | tuple):
        for message in messages:
            pairs.extend(_flatten(message, prefix))
    else:
        pairs.append((prefix, str(messages)))
    return pairs


def field_errors(messages: Mapping[str, Any]) -> list[FieldError]:
    """webargs' ``{location: {field: [messages]}}`` as one entry per invalid field."""
    errors: list[FieldError] = []
    for location_key, by_field in messages.items():
        location = _LOCATIONS.get(location_key, location_key)
        for field, message in _flatten(by_field):
            errors.append({"field": field or location, "location": location, "message": message})
    return errors


def _http_detail(error: HTTPException) -> str:
    if error.description and error.description != type(error).description:
        return error.description
    status = error.code or 500
    if status == 404:
        return f"Nothing at {request.path}."
    if status == 405:
        return f"{request.method} is not supported by {request.path}."
    return error.description or "The request failed."


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and isinstance(messages, Mapping):
        return problem_response(validation_error(field_errors(messages)))
    headers = dict(error.get_headers()) if status in {405, 429} else {}
    headers.pop("Content-Type", None)
    body = problem_body(status, problem=problem_for_status(status), detail=_http_detail(error))
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    response.headers.update(headers)
    return response


def _handle_unexpected(error: Exception) -> Response:
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return problem_response(
        ProblemError(INTERNAL_ERROR, "The server could not complete the request.")
    )


def error_response(error: Exception, *, database_log: BurstLogger) -> Response:
    """The problem+json answer to ``error``. A database that cannot answer right now is a 503
    ``database-unavailable`` with ``Retry-After``, logged once per burst on ``database_log``;
    any other database error is unexpected (a 500, logged with its traceback). Pages that
    answer in HTML render the same answer their own way."""
    if isinstance(error, ProblemError):
        return problem_response(error)
    if isinstance(error, HTTPException):
        return _handle_http_exception(error)
    if isinstance(error, DATABASE_ERROR_TYPES) and is_retryable(error):
        database_log.warning(
            BURST_KEY,
            "PostgreSQL could not serve %s %s: %r",
            request.method,
            request.path,
            error,
        )
        return problem_response(database_unavailable())
    return _handle_unexpected(error)


def install_problem_handlers(app: Flask, *, database_log: BurstLogger) -> None:
    """Every error becomes problem+json (``error_response``)."""

    def handle(error: Exception) -> Response:
        return error_response(error, database_log=database_log)

    # HTTPException by name too: it replaces the handler flask-smorest registers for it.
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, handle)


ChecksOf = Callable[[], Mapping[str, SyncCheck]]


def ops_blueprint(checks: ChecksOf, *, metrics: bool = True) -> Blueprint:
    """/healthz (alive), /readyz (``checks()`` answer) and, unless the service serves its
    metrics on a port of their own, /metrics."""
    blueprint = Blueprint("ops", __name__)

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return Response(json.dumps(HEALTHY_BODY), mimetype="application/json")

    @blueprint.get("/readyz")
    def readyz() -> Response:
        status, body = readiness(run_checks_sync(checks()))
        mimetype = "application/json" if status == 200 else PROBLEM_CONTENT_TYPE
        return Response(json.dumps(body), status=status, mimetype=mimetype)

    if metrics:

        @blueprint.get("/metrics")
        def metrics_route() -> Response:
            payload, content_type = negotiated_payload(request.headers.get("Accept"))
            return Response(payload, content_type=content_type)

    return blueprint
