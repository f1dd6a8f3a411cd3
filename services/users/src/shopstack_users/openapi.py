"""The users service's OpenAPI document: flask-smorest's, with every error the shared Problem.

Routes say which problems they can answer with (``problem_responses``); ``build_document``
makes each of those a ``application/problem+json`` response with the platform's one
``Problem`` schema (``shopstack_common.openapi.document_problems``). An error response that
declares a media type of its own keeps it: the token endpoint's RFC 6749 errors are
``application/json``, as §5.2 asks.
"""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, Response, json
from flask_smorest import Api

from shopstack_common.openapi import document_problems
from shopstack_common.problems import ProblemType

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
DOCUMENT_PATH = "/openapi.json"


class SchemaKeywordsPlugin(MarshmallowPlugin):
    """Adds the JSON Schema keywords a marshmallow schema declares in ``Meta.json_schema``:
    what its ``validates_schema`` rules accept, which fields alone cannot say."""

    # The signature is MarshmallowPlugin's, which apispec's typed base class does not match.
    def schema_helper(  # type: ignore[override]
        self, name: str, _: Any, schema: Any = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        json_schema: dict[str, Any] | None = super().schema_helper(  # type: ignore[no-untyped-call]
            name, _, schema=schema, **kwargs
        )
        if json_schema is not None:
            meta = getattr(resolve_schema_cls(schema), "Meta", None)
            json_schema.update(getattr(meta, "json_schema", {}))
        return json_schema


class UsersApi(Api):  # type: ignore[misc]
    # Every error is documented per operation (and rendered as a Problem); flask-smorest's
    # catch-all "default" response would say otherwise.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, app: Flask) -> None:
        super().__init__(app, spec_kwargs={"marshmallow_plugin": SchemaKeywordsPlugin()})


def problem_responses(*problems: ProblemType) -> dict[str, Any]:
    """The ``responses`` of ``@blp.doc``: one per status, naming the problem types a client
    can get with it (several types may share a status)."""
    by_status: dict[int, list[ProblemType]] = defaultdict(list)
    for problem in problems:
        by_status[problem.status].append(problem)
    return {
        str(status): {
            "description": "; ".join(
                f"`{p.slug}`: {p.title}" for p in sorted(types, key=attrgetter("slug"))
            )
        }
        for status, types in sorted(by_status.items())
    }


def build_document(api: Api) -> dict[str, Any]:
    document: dict[str, Any] = api.spec.to_dict()
    document_problems(document)
    # flask-smorest's stock error responses and pagination schema are not used here: drop
    # what nothing refers to any more.
    components = document.get("components", {})
    components.pop("responses", None)
    schemas = components.get("schemas", {})
    while unused := [name for name in schemas if not _referenced(document, name)]:
        for name in unused:
            del schemas[name]
    return document


def _referenced(document: dict[str, Any], schema: str) -> bool:
    others = {k: v for k, v in document["components"]["schemas"].items() if k != schema}
    ref = json.dumps(f"#/components/schemas/{schema}")
    return ref in json.dumps(document["paths"]) or ref in json.dumps(others)


def install_document_route(app: Flask, api: Api) -> None:
    """Serve ``build_document`` at /openapi.json, built once per app on first request."""
    built: list[bytes] = []

    def openapi_json() -> Response:
        if not built:
            built.append(json.dumps(build_document(api)).encode())
        return Response(built[0], mimetype="application/json")

    app.add_url_rule(DOCUMENT_PATH, "openapi_json", openapi_json)
