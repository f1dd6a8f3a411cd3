"""The FastAPI side of the platform's plumbing: problem+json for every error, the ops routes,
and the problem half of the OpenAPI document. Orders and the gateway install it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shopstack_common.health import HEALTHY_BODY, AsyncCheck, readiness, run_checks
from shopstack_common.metrics import negotiated_payload
from shopstack_common.openapi import StatusesOf, document_problems
from shopstack_common.problems import (
    MALFORMED_REQUEST,
    PROBLEM_CONTENT_TYPE,
    FieldError,
    ProblemError,
    problem_body,
    problem_for_status,
    validation_error,
)


def problem_response(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.body(),
        status_code=error.status,
        headers=error.headers or None,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def field_errors(exc: RequestValidationError) -> list[FieldError]:
    """Pydantic's error list, reshaped so each entry names its field and where it came from."""
    errors: list[FieldError] = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        location = (
            str(loc.pop(0))
            if loc and loc[0] in {"body", "query", "path", "header", "cookie"}
            else "body"
        )
        errors.append(
            {
                "field": _field_path(loc) or location,
                "location": location,
                "message": str(error.get("msg", "invalid value")),
                "code": str(error.get("type", "invalid")),
            }
        )
    return errors


async def _problem_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc)


def _http_detail(request: Request, exc: StarletteHTTPException) -> str:
    if (
        isinstance(exc.detail, str)
        and exc.detail
        and exc.detail != _default_phrase(exc.status_code)
    ):
        return exc.detail
    if exc.status_code == 404:
        return f"Nothing at {request.url.path}."
    if exc.status_code == 405:
        return f"{request.method} is not supported by {request.url.path}."
    return _default_phrase(exc.status_code) or "The request failed."


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's 405 names only the methods of
    the first route whose path matched, and a path often has one route per method."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    problem = problem_for_status(exc.status_code)
    body = problem_body(exc.status_code, problem=problem, detail=_http_detail(request, exc))
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    return JSONResponse(
        body, status_code=exc.status_code, headers=headers, media_type=PROBLEM_CONTENT_TYPE
    )


async def _validation_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    unreadable = [error for error in exc.errors() if error.get("type") == "json_invalid"]
    if unreadable:
        # Not JSON at all: the request cannot be read, which is not the same as a field being
        # wrong (and what the Flask side answers too).
        reason = (unreadable[0].get("ctx") or {}).get("error", "invalid JSON")
        return problem_response(
            ProblemError(
                MALFORMED_REQUEST,
                f"The body is not valid JSON: {reason}.",
                errors=[{"field": "body", "location": "body", "message": "not valid JSON"}],
            )
        )
    return problem_response(validation_error(field_errors(exc)))


def _default_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)


ChecksOf = Callable[[], Mapping[str, AsyncCheck]]


def ops_router(checks: ChecksOf, *, timeout: float, metrics: bool = True) -> APIRouter:
    """/healthz (alive), /readyz (``checks()`` answer) and, unless the service serves its
    metrics on a port of their own, /metrics; kept out of the API docs.

    ``checks`` is called per request: what it checks exists only once the lifespan ran."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return HEALTHY_BODY

    @router.get("/readyz")
    async def readyz() -> Response:
        status, body = readiness(await run_checks(checks(), timeout))
        media_type = "application/json" if status == 200 else PROBLEM_CONTENT_TYPE
        return JSONResponse(body, status_code=status, media_type=media_type)

    if metrics:

        @router.get("/metrics")
        def metrics_route(request: Request) -> Response:
            payload, content_type = negotiated_payload(request.headers.get("accept"))
            return Response(payload, media_type=content_type)

    return router


def install_problem_openapi(app: FastAPI, statuses_of: StatusesOf | None = None) -> None:
    """Make ``app.openapi()`` describe every error as the shared ``Problem``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = document_problems(document, statuses_of)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
