from typing import Any

from shopstack_common.openapi import PROBLEM_REF, document_problems


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "paths": {
            "/things": {
                "post": {
                    "responses": {
                        "201": {"description": "Created"},
                        "422": {
                            "description": "Validation Error",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                                }
                            },
                        },
                        409: {"description": "Taken"},
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "HTTPValidationError": {
                    "properties": {"detail": {"$ref": "#/components/schemas/ValidationError"}}
                },
                "ValidationError": {"type": "object"},
                "Thing": {"type": "object"},
            }
        },
    }


def test_every_error_is_the_shared_problem() -> None:
    document = document_problems(_document(), lambda _path, _method, _op: [401, 503])
    responses = document["paths"]["/things"]["post"]["responses"]
    assert sorted(responses) == ["201", "401", "409", "422", "503"]
    for code in ("401", "409", "422", "503"):
        content = responses[code]["content"]
        assert list(content) == ["application/problem+json"]
        assert content["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}
    assert responses["409"]["description"] == "Taken"
    assert "Retry-After" in responses["503"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert "content" not in responses["201"]


def test_framework_error_schemas_give_way_to_the_problem() -> None:
    schemas = document_problems(_document())["components"]["schemas"]
    assert sorted(schemas) == ["FieldError", "Problem", "Thing"]


def test_an_error_of_another_media_type_keeps_it() -> None:
    oauth_error = {
        "description": "RFC 6749 error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
    }
    document = {"paths": {"/token": {"post": {"responses": {"400": oauth_error}}}}}
    assert document_problems(document)["paths"]["/token"]["post"]["responses"]["400"] == oauth_error
