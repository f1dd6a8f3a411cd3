import pytest

from shopstack_common.problems import ProblemError
from shopstack_common.urlencoded import refuse_undecodable, undecodable_fields


@pytest.mark.parametrize(
    ("encoded", "fields"),
    [
        (b"q=tea&limit=5", []),
        (b"q=gr%C3%BCn+tee", []),  # UTF-8 "grün tee"
        (b"q=a%ED%A0%80b", ["q"]),  # an encoded lone surrogate
        (b"q=%FF&sort=name&x=%C3", ["q", "x"]),  # a stray byte, a cut sequence
        (b"%FF=1", ["\ufffd"]),  # the name itself, shown as far as it can be
        (b"", []),
    ],
)
def test_fields_that_are_not_utf8_text_are_named(encoded: bytes, fields: list[str]) -> None:
    assert [error["field"] for error in undecodable_fields(encoded, "query")] == fields


def test_the_refusal_is_the_malformed_request_problem() -> None:
    with pytest.raises(ProblemError) as refused:
        refuse_undecodable(b"username=%ED%A0%80", "form")
    assert refused.value.status == 400
    assert refused.value.problem.slug == "malformed-request"
    assert refused.value.errors == [
        {"field": "username", "location": "form", "message": "Not UTF-8 text once percent-decoded."}
    ]
