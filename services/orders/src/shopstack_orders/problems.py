"""The problem+json shape in the OpenAPI document, so clients see what errors look like."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from shopstack_common.problem import PROBLEM_CONTENT_TYPE


class FieldProblem(BaseModel):
    field: str
    location: str | None = None
    message: str
    code: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None
    request_id: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented as application/problem+json."""
    return {
        status: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}} for status in statuses
    }
