"""The OpenAPI document as a contract: every operation named and summarised, every error it
can answer with documented as the platform's Problem (the token endpoint's RFC 6749 errors
as application/json), request bodies as strict as validation, and links that walk
register → token → me. (test_openapi_fuzz.py checks the document against the service.)"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client, TestResponse

from shopstack_common.openapi import operations
from shopstack_common.problems import PROBLEM_CONTENT_TYPE, get_problem_type

if TYPE_CHECKING:
    from conftest import GatewayEdge

OPERATIONS = {
    ("/api/v1/auth/register", "post"): "register",
    ("/api/v1/auth/token", "post"): "issueToken",
    ("/api/v1/auth/revoke", "post"): "revokeToken",
    ("/.well-known/jwks.json", "get"): "getJwks",
    ("/api/v1/users/me", "get"): "getMe",
    ("/api/v1/users/me", "patch"): "updateMe",
    ("/api/v1/users", "get"): "listUsers",
    ("/api/v1/users/{user_id}", "get"): "getUser",
    ("/api/v1/users/{user_id}", "patch"): "updateUser",
    ("/api/v1/users/{user_id}", "delete"): "deleteUser",
    ("/api/v1/users/{user_id}/roles", "put"): "setRoles",
}
# RFC 6749 §5.2: the token endpoint's own errors are application/json, not problems.
OAUTH_ERRORS = {("issueToken", "400"), ("issueToken", "401"), ("revokeToken", "400")}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    parsed: dict[str, Any] = response.get_json()
    return parsed


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for _, _, op in operations(document)}


def test_every_operation_is_there_named_and_summarised(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    found = {(path, method): op["operationId"] for path, method, op in operations(document)}
    assert found == OPERATIONS
    for _, _, operation in operations(document):
        assert operation.get("summary"), operation["operationId"]
        assert len(operation["summary"]) < 100, operation["operationId"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["clientBasic"]["scheme"] == "basic"


def test_every_error_is_a_problem_but_the_token_endpoints_own(document: dict[str, Any]) -> None:
    checked = 0
    for operation_id, operation in by_id(document).items():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            checked += 1
            (media_type,) = response["content"]
            schema = response["content"][media_type]["schema"]
            if (operation_id, status) in OAUTH_ERRORS:
                assert media_type == "application/json"
                assert schema == {"$ref": "#/components/schemas/OAuthError"}
                continue
            assert media_type == PROBLEM_CONTENT_TYPE, (operation_id, status)
            assert schema == {"$ref": "#/components/schemas/Problem"}
            # The description names the problem types; each is in the platform's registry,
            # with the status it is documented under.
            slugs = re.findall(r"`([a-z-]+)`", response["description"])
            assert slugs, (operation_id, status)
            for slug in slugs:
                problem = get_problem_type(slug)
                assert problem is not None, slug
                assert problem.status == int(status), (operation_id, slug)
    assert checked > 40
    assert "Error" not in document["components"]["schemas"]  # flask-smorest's own is gone


@pytest.mark.parametrize(
    ("operation_id", "headers"),
    [
        ("listUsers", {"401": "WWW-Authenticate", "503": "Retry-After"}),
        ("updateMe", {"429": "Retry-After"}),
        ("issueToken", {"401": "WWW-Authenticate", "429": "Retry-After", "503": "Retry-After"}),
    ],
)
def test_error_headers_are_documented(
    document: dict[str, Any], operation_id: str, headers: dict[str, str]
) -> None:
    responses = by_id(document)[operation_id]["responses"]
    for status, header in headers.items():
        assert header in responses[status]["headers"], (status, header)


def test_every_operation_that_needs_a_token_says_so(document: dict[str, Any]) -> None:
    for operation_id, operation in by_id(document).items():
        needs_token = "401" in operation["responses"] and operation_id != "issueToken"
        assert (operation.get("security") == [{"bearerAuth": []}]) is needs_token, operation_id


def test_json_bodies_refuse_unknown_fields(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("Register", "MeUpdate", "AdminUserUpdate", "Roles"):
        assert schemas[name]["additionalProperties"] is False, name
    # A PATCH must change something.
    assert schemas["MeUpdate"]["minProperties"] == 1
    assert schemas["AdminUserUpdate"]["minProperties"] == 1
    assert schemas["MeUpdate"]["dependentRequired"] == {"password": ["current_password"]}
    register = schemas["Register"]["properties"]
    assert register["password"]["minLength"] == 12
    assert register["password"]["maxLength"] == 128
    assert register["email"]["format"] == "email"
    assert "\\u0000" in register["full_name"]["pattern"]


def test_form_bodies_say_what_each_grant_needs(document: dict[str, Any]) -> None:
    operation = by_id(document)["issueToken"]
    schema = operation["requestBody"]["content"][FORM]["schema"]
    token_request = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    grants = {
        variant["properties"]["grant_type"]["const"]: variant["required"]
        for variant in token_request["oneOf"]
    }
    assert grants == {
        "password": ["username", "password"],
        "refresh_token": ["refresh_token"],
        "client_credentials": [],
    }
    # Unknown parameters are ignored (RFC 6749 §3.2), but each must be a single string.
    assert token_request["additionalProperties"]["type"] == "string"
    scope = re.compile(token_request["properties"]["scope"]["pattern"])
    assert scope.fullmatch("profile orders")
    assert not scope.fullmatch("profile  orders")
    assert not scope.fullmatch('a"b')


def test_links_walk_register_token_me(document: dict[str, Any]) -> None:
    operation = by_id(document)
    sign_in = operation["register"]["responses"]["201"]["links"]["signIn"]
    assert sign_in["operationId"] == "issueToken"
    assert sign_in["requestBody"]["username"] == "$request.body#/email"
    read_me = operation["issueToken"]["responses"]["200"]["links"]["readMe"]
    assert read_me["operationId"] == "getMe"
    assert read_me["parameters"] == {
        "header.Authorization": "Bearer {$response.body#/access_token}"
    }
    targets = {
        link["operationId"]
        for op in operation.values()
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    }
    assert targets <= set(operation)
    assert {"issueToken", "getMe", "getUser", "updateUser", "deleteUser", "setRoles"} <= targets


def evaluate(expression: Any, request_body: dict[str, Any], response_body: Any) -> Any:
    """An OpenAPI runtime expression (``$request.body#/…``, ``$response.body#/…``, or a string
    with them embedded in braces), as far as this document uses them."""
    if not isinstance(expression, str):
        return expression

    def resolve(match: re.Match[str]) -> str:
        return str(evaluate(match.group(1), request_body, response_body))

    if "{" in expression:
        return re.sub(r"\{([^}]+)\}", resolve, expression)
    for prefix, source in (("$request.body#", request_body), ("$response.body#", response_body)):
        if expression.startswith(prefix):
            value = source
            for part in expression[len(prefix) :].strip("/").split("/"):
                value = value[int(part)] if isinstance(value, list) else value[part]
            return value
    return expression


def test_following_the_links_signs_a_new_user_in_and_reads_their_profile(
    document: dict[str, Any], users_app: Flask, behind_gateway: type[GatewayEdge]
) -> None:
    """register → (signIn) token → (readMe) /users/me, through the gateway stand-in, with
    nothing but what the links say to carry over."""
    client = Client(behind_gateway(users_app), TestResponse)
    operation = by_id(document)
    registration = {"email": "Link@Example.com", "password": "a long enough pass", "full_name": "L"}
    registered = client.post("/api/v1/auth/register", json=registration)
    assert registered.status_code == 201

    sign_in = operation["register"]["responses"]["201"]["links"]["signIn"]
    form = {
        name: evaluate(value, registration, registered.get_json())
        for name, value in sign_in["requestBody"].items()
    }
    token = client.post("/api/v1/auth/token", data=form)
    assert token.status_code == 200, token.get_data(as_text=True)

    read_me = operation["issueToken"]["responses"]["200"]["links"]["readMe"]
    headers = {
        name.removeprefix("header."): evaluate(value, form, token.get_json())
        for name, value in read_me["parameters"].items()
    }
    me = client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200, me.get_data(as_text=True)
    assert me.get_json() == registered.get_json()
    # Without the token the same call is refused: the link's header is what identified us.
    assert client.get("/api/v1/users/me").status_code == 401
