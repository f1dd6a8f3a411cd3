"""The statuses each operation can answer with, read from what the operation depends on.

A route documents the answers of its own domain (409 out of stock, 403 for a filter only
administrators may use) in ``responses=``. What every operation of a kind can answer is
derived here from its dependencies, so a new route cannot forget them:

* any input (path, query, header or body) -> 422 ``validation``;
* a path naming a resource -> 404 ``not-found``;
* a JSON body -> 400 ``malformed-request`` for one that is not JSON, 415
  ``unsupported-media-type`` for a body of another type;
* a caller's identity -> 401; an administrator or a user required -> 403;
* a database session -> 503 ``database-unavailable`` (with ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from shopstack_orders.deps import (
    get_session,
    require_admin,
    require_identity,
    require_json_body,
    require_user,
)

_STATUS_OF_DEPENDENCY: dict[Callable[..., Any], int] = {
    get_session: 503,
    require_identity: 401,
    require_admin: 403,
    require_user: 403,
    require_json_body: 415,
}


def operation_id(route: APIRoute) -> str:
    """The route function's name (``place_order``): short, stable, and what links name."""
    return route.name


def link(
    operation: str,
    description: str,
    *,
    parameters: dict[str, str] | None = None,
    request_body: Any = None,
) -> dict[str, Any]:
    """An OpenAPI link to ``operation``, its values taken from the answer it follows."""
    target: dict[str, Any] = {"operationId": operation, "description": description}
    if parameters:
        target["parameters"] = parameters
    if request_body is not None:
        target["requestBody"] = request_body
    return target


def next_page_link(operation: str, params: type[BaseModel]) -> dict[str, Any]:
    """The link from a page to the next one: its cursor, and the very filters and sort it was
    asked with (a cursor is bound to them)."""
    parameters = {name: f"$request.query.{name}" for name in params.model_fields}
    parameters["cursor"] = "$response.body#/next_cursor"
    return link(operation, "The next page of the same list.", parameters=parameters)


def location_header(what: str) -> dict[str, Any]:
    return {"Location": {"description": f"The {what}'s URL.", "schema": {"type": "string"}}}


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _tree(dependency)


def route_statuses(dependant: Dependant) -> set[int]:
    statuses: set[int] = set()
    for node in _tree(dependant):
        if node.call in _STATUS_OF_DEPENDENCY:
            statuses.add(_STATUS_OF_DEPENDENCY[node.call])
        if node.path_params or node.query_params or node.header_params or node.body_params:
            statuses.add(422)
        if node.path_params:
            statuses.add(404)
        if node.body_params:
            statuses.add(400)
    return statuses


def statuses_of(app: FastAPI, path: str, method: str, _operation: dict[str, Any]) -> set[int]:
    """For ``install_problem_openapi``: what the route at ``method path`` can answer."""
    for route in iter_route_contexts(app.routes):
        if _serves(route, path, method):
            dependant: Dependant | None = route.dependant
            return route_statuses(dependant) if dependant is not None else set()
    return set()


def _serves(route: RouteContext, path: str, method: str) -> bool:
    # The route as included (prefix and router dependencies applied), as get_openapi sees it.
    return (
        isinstance(route.original_route, APIRoute)
        and route.path_format == path
        and method.upper() in (route.methods or ())
    )
