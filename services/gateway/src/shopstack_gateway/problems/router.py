"""The registry's routes: JSON by default, HTML for a client that prefers it (a browser)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from shopstack_common.problems import NOT_FOUND, ProblemError, get_problem_type, problem_types
from shopstack_gateway.problems.pages import INDEX_PATH, index_page, problem_page
from shopstack_gateway.problems.schemas import SLUG_PATTERN, ProblemTypeList, ProblemTypePublic

router = APIRouter(prefix=INDEX_PATH, tags=["problems"])

# The registry changes only with a release.
_HEADERS = {"Cache-Control": "public, max-age=3600", "Vary": "Accept"}
_BOTH = {"content": {"text/html": {"schema": {"type": "string"}}}}


def prefers_html(accept: str | None) -> bool:
    """Whether ``Accept`` ranks HTML above JSON; a tie (``*/*``, or no header) is JSON."""
    html = json = 0.0
    for media_range in (accept or "").split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media_type = media_type.lower()
        if media_type in ("text/html", "text/*", "*/*"):
            html = max(html, quality)
        if media_type in ("application/json", "application/*", "*/*"):
            json = max(json, quality)
    return html > json


@router.get(
    "",
    response_model=ProblemTypeList,
    summary="Every problem type of the platform",
    responses={200: _BOTH},
)
async def list_problem_types(request: Request) -> Response:
    problems = [ProblemTypePublic.of(problem) for problem in problem_types()]
    if prefers_html(request.headers.get("accept")):
        return HTMLResponse(index_page(problems), headers=_HEADERS)
    return JSONResponse(ProblemTypeList(items=problems).model_dump(), headers=_HEADERS)


@router.get(
    "/{slug}",
    response_model=ProblemTypePublic,
    summary="What one problem type means",
    responses={200: _BOTH, 404: {"description": "No problem type has this slug."}},
)
async def get_problem(
    request: Request, slug: Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
) -> Response:
    problem = get_problem_type(slug)
    if problem is None:
        raise ProblemError(NOT_FOUND, f"No problem type is called {slug!r}.")
    public = ProblemTypePublic.of(problem)
    if prefers_html(request.headers.get("accept")):
        return HTMLResponse(problem_page(public), headers=_HEADERS)
    return JSONResponse(public.model_dump(), headers=_HEADERS)
