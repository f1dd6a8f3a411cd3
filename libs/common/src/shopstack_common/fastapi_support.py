"""FastAPI wiring shared by orders and the gateway: problem+json errors and the ops routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopstack_common.health import HEALTHY_BODY, AsyncCheck, readiness, run_checks
from shopstack_common.metrics import METRICS_CONTENT_TYPE, metrics_payload
from shopstack_common.problem import (
    PROBLEM_CONTENT_TYPE,
    FieldError,
    problem_body,
    problem_type,
)


class ProblemError(Exception):
    """Raise from a service function to answer with a specific problem+json."""

    def __init__(
        self,
        status: int,
        *,
        slug: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or str(status))
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(
        status,
        title=title,
        detail=detail,
        type_=problem_type(slug) if slug else None,
        errors=errors,
        extra=extra,
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


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
    return problem_response(
        exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _http_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(
        exc.status_code,
        detail=detail if detail and detail != _default_phrase(exc.status_code) else None,
        headers=exc.headers,
    )


async def _validation_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc)
    names = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422,
        slug="validation",
        title="Invalid request",
        detail=f"Invalid fields: {names}",
        errors=errors,
    )


def _default_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)


def ops_router(checks: Mapping[str, AsyncCheck], *, timeout: float) -> APIRouter:
    """/healthz (alive), /readyz (dependencies answer) and /metrics, kept out of the API docs."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return HEALTHY_BODY

    @router.get("/readyz")
    async def readyz() -> Response:
        status, body = readiness(await run_checks(checks, timeout))
        media_type = "application/json" if status == 200 else PROBLEM_CONTENT_TYPE
        return JSONResponse(body, status_code=status, media_type=media_type)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(metrics_payload(), media_type=METRICS_CONTENT_TYPE)

    return router
