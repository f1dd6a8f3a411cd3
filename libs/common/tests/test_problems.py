import re

import pytest

from shopstack_common.context import RequestContext, request_context_var
from shopstack_common.problems import (
    NOT_FOUND,
    OUT_OF_STOCK,
    QUOTA_EXCEEDED,
    ProblemError,
    problem_body,
    problem_for_status,
    problem_types,
    validation_error,
)


def test_every_type_is_documented_once() -> None:
    types = problem_types()
    assert len({t.slug for t in types}) == len(types)
    for problem in types:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", problem.slug), problem.slug
        assert 400 <= problem.status <= 599
        assert problem.title
        assert len(problem.description) > 30, problem.slug


def test_types_resolve_to_their_description_page() -> None:
    assert OUT_OF_STOCK.type_uri == "/problems/out-of-stock"
    # Registered with IANA, so it keeps IANA's URI.
    assert QUOTA_EXCEEDED.type_uri.startswith("https://iana.org/")


def test_a_problem_error_carries_what_the_answer_needs() -> None:
    error = ProblemError(OUT_OF_STOCK, "Only 2 left.", headers={"Retry-After": "1"})
    assert error.status == 409
    assert error.body() == {
        "type": "/problems/out-of-stock",
        "title": "Out of stock",
        "status": 409,
        "detail": "Only 2 left.",
    }
    assert error.headers == {"Retry-After": "1"}


def test_the_body_names_the_request() -> None:
    token = request_context_var.set(RequestContext(request_id="req-1"))
    try:
        assert problem_body(404, problem=NOT_FOUND)["request_id"] == "req-1"
    finally:
        request_context_var.reset(token)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 415, 422, 429, 500, 502, 503])
def test_framework_errors_get_a_registered_type(status: int) -> None:
    problem = problem_for_status(status)
    assert problem is not None
    assert problem.status == status
    assert problem_body(status)["type"] == problem.type_uri


def test_an_unknown_status_is_about_blank() -> None:
    assert problem_body(418)["type"] == "about:blank"


def test_a_validation_error_names_its_fields() -> None:
    error = validation_error(
        [{"field": "items[0].quantity", "message": "too small"}, {"field": "email", "message": "x"}]
    )
    assert error.status == 422
    assert error.detail == "Invalid fields: email, items[0].quantity"
    assert error.body()["errors"][0]["field"] == "items[0].quantity"
