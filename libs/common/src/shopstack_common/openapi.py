"""The error half of every OpenAPI document of the platform.

Each service, and the gateway's merged document, describes its errors the same way: every
status an operation can answer with is a response of media type ``application/problem+json``
whose schema is the one shared ``Problem`` component below, with the headers that go with it
(``Retry-After``, ``WWW-Authenticate``, ``Allow``). The documents are identical in this part,
so merging them keeps one ``Problem``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any

from shopstack_common.problems import PROBLEM_CONTENT_TYPE

Document = dict[str, Any]
Operation = dict[str, Any]

PROBLEM_REF = "#/components/schemas/Problem"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

PROBLEM_SCHEMAS: dict[str, Any] = {
    "FieldError": {
        "type": "object",
        "title": "FieldError",
        "description": "One invalid input.",
        "properties": {
            "field": {"type": "string", "description": "The field, e.g. `items[0].quantity`."},
            "location": {
                "type": "string",
                "enum": ["body", "query", "path", "header", "cookie", "form"],
                "description": "Where the field came from.",
            },
            "message": {"type": "string"},
            "code": {"type": "string", "description": "A machine-readable reason."},
        },
        "required": ["field", "message"],
    },
    "Problem": {
        "type": "object",
        "title": "Problem",
        "description": (
            "RFC 9457 problem details. `type` names the kind of error; its description is "
            "served at that URI (`/problems/<slug>`)."
        ),
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "format": "uri-reference"},
            "request_id": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        },
        "required": ["type", "title", "status"],
        "additionalProperties": True,
    },
}

_RETRY_AFTER = {
    "description": "Seconds until a retry may succeed.",
    "schema": {"type": "integer", "minimum": 0},
}
RESPONSE_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The Bearer challenge (RFC 6750).",
            "schema": {"type": "string"},
        }
    },
    405: {
        "Allow": {"description": "The methods the resource supports.", "schema": {"type": "string"}}
    },
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}

# The schemas frameworks add for their own validation errors, which problem+json replaces.
FRAMEWORK_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError", "Error", "DefaultError")


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """One OpenAPI response object for an error status."""
    if description is None:
        try:
            description = HTTPStatus(status).phrase
        except ValueError:
            description = "Error"
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    headers = RESPONSE_HEADERS.get(status)
    if headers:
        response["headers"] = copy.deepcopy(headers)
    return response


def operations(document: Mapping[str, Any]) -> Iterable[tuple[str, str, Operation]]:
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                yield path, method, operation


StatusesOf = Callable[[str, str, Operation], Iterable[int]]


def document_problems(document: Document, statuses_of: StatusesOf | None = None) -> Document:
    """Make every error response of ``document`` a shared ``Problem`` (in place; returned).

    ``statuses_of(path, method, operation)`` names statuses to add to an operation beyond the
    ones it already documents (for example what a middleware answers for every route).

    An error response that declares a media type of its own keeps it (the token endpoint's
    RFC 6749 errors are ``application/json``, as its §5.2 asks); only a framework's stock
    validation error is replaced."""
    for path, method, operation in operations(document):
        responses: dict[str, Any] = operation.setdefault("responses", {})
        # Frameworks key responses by string ("422") or by number; make them all strings.
        for code in [code for code in responses if not isinstance(code, str)]:
            responses[str(code)] = responses.pop(code)
        wanted = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
        if statuses_of is not None:
            wanted |= {int(code) for code in statuses_of(path, method, operation)}
        for status in sorted(wanted):
            key = str(status)
            existing = responses.get(key) or {}
            if not _declares_its_own_media_type(existing):
                responses[key] = problem_response(status, existing.get("description"))
    components: dict[str, Any] = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in FRAMEWORK_ERROR_SCHEMAS:
        if name in schemas and not _referenced(document, f"#/components/schemas/{name}"):
            del schemas[name]
    schemas.update(copy.deepcopy(PROBLEM_SCHEMAS))
    return document


def _declares_its_own_media_type(response: Mapping[str, Any]) -> bool:
    content = response.get("content")
    if not isinstance(content, dict) or not content or PROBLEM_CONTENT_TYPE in content:
        return False
    framework = {f"#/components/schemas/{name}" for name in FRAMEWORK_ERROR_SCHEMAS}
    return not any(
        isinstance(media, dict) and (media.get("schema") or {}).get("$ref") in framework
        for media in content.values()
    )


def _referenced(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        if node.get("$ref") == ref:
            return True
        return any(_referenced(value, ref) for key, value in node.items() if key != "schemas")
    if isinstance(node, list):
        return any(_referenced(item, ref) for item in node)
    return False
