from shopstack_common.context import RequestContext, request_context_var
from shopstack_common.problem import problem_body, problem_type


def test_problem_defaults_follow_rfc9457() -> None:
    body = problem_body(404)
    assert body == {"type": "about:blank", "title": "Not Found", "status": 404}


def test_problem_carries_request_id_and_field_errors() -> None:
    token = request_context_var.set(RequestContext(request_id="req-1"))
    try:
        body = problem_body(
            422,
            title="Invalid request",
            type_=problem_type("validation"),
            errors=[{"field": "email", "location": "body", "message": "bad"}],
        )
    finally:
        request_context_var.reset(token)
    assert body["request_id"] == "req-1"
    assert body["type"] == "https://shopstack.dev/problems/validation"
    assert body["errors"] == [{"field": "email", "location": "body", "message": "bad"}]


def test_unknown_status_gets_a_generic_title() -> None:
    assert problem_body(599)["title"] == "Error"
