"""One OpenAPI document for the whole API, as clients see it through the gateway.

It merges the gateway's own routes with each upstream's ``/openapi.json``, keeping only the
paths the route table sends to that upstream (so ``/healthz`` of a service never shows). The
gateway decides security, not the services: every operation that needs a token gets the OAuth2
password-flow scheme pointing at the token endpoint, so Swagger UI's "Authorize" works, and the
identity headers the gateway sets are removed from the documented parameters.

Names stay unique without breaking what refers to them: a component name that two sources use
for different things is prefixed with the source's name (``orders_Item``) and the source's
``$ref``s follow; an operationId another source already uses is prefixed the same way and the
source's ``links`` follow. A link to an operation the merged document does not hold is dropped.

Every operation documents the gateway's own answers next to its service's: 401 (with
``WWW-Authenticate``), 429 (``Retry-After``, ``RateLimit``) and 503 on every rate-limited
route, 413 wherever a body is accepted and 502, 503, 504 on every proxied route. Then every
error response, the services' and the gateway's alike, becomes the one shared ``Problem``
(``shopstack_common.openapi``), and components nothing refers to any more are dropped.

The result is cached for ``openapi_cache_seconds``; while an upstream cannot be reached its part
is missing (``x-shopstack-missing`` says which) and the document is rebuilt sooner.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from shopstack_common.identity import is_identity_header
from shopstack_common.openapi import document_problems
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.routing import PublicRoutes, RouteTable
from shopstack_gateway.upstreams import Upstream

logger = logging.getLogger(__name__)

SECURITY_SCHEME = "OAuth2Password"
GATEWAY_SOURCE = "gateway"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
COMPONENT_SECTIONS = (
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "links",
    "callbacks",
    "pathItems",
)
RETRY_MISSING_SECONDS = 5.0

Document = dict[str, Any]

# What the gateway itself may answer, by status: (on a public operation, elsewhere).
_UNAUTHORIZED = (
    "The request carried a bearer token that is not valid: a token sent is checked even "
    "where none is needed (`WWW-Authenticate` says what is wrong).",
    "No bearer token, or one that is not valid (`WWW-Authenticate` says which).",
)
_RATE_LIMITED = (
    "Over the rate limit (`violated-policies` names it); `Retry-After` and `RateLimit` say "
    "when to come back."
)
_UNAVAILABLE_OWN = (
    "The gateway cannot verify access tokens or check rate limits right now; retry after "
    "`Retry-After` seconds."
)
_UNAVAILABLE_PROXIED = (
    "The service behind this route failed repeatedly and the gateway stopped sending it "
    "requests for a moment, or the gateway cannot verify access tokens or check rate limits "
    "right now; retry after `Retry-After` seconds."
)
_BAD_GATEWAY = "The gateway could not reach the service behind this route."
_GATEWAY_TIMEOUT = "The service behind this route did not answer in time."
_TOO_LARGE = "The request body is larger than the gateway accepts."
_INTERNAL = "The request failed unexpectedly; it is logged with the request id."
_RATE_LIMIT_HEADERS = {
    "RateLimit": {
        "description": 'The bucket that was checked: `"<policy>";r=<left>;t=<seconds>`.',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The limit: `"<policy>";q=<requests>;w=<seconds>`.',
        "schema": {"type": "string"},
    },
}


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in renames:
            node = {**node, "$ref": renames[ref]}
        return {key: _rewrite_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _link_maps(paths: Mapping[str, Any], components: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ``links`` object: those of the operations' responses and the components'."""
    found: list[dict[str, Any]] = []
    responses: list[Any] = [
        response
        for item in paths.values()
        if isinstance(item, dict)
        for operation in _operations(item)
        for response in (operation.get("responses") or {}).values()
    ]
    responses += list((components.get("responses") or {}).values())
    for response in responses:
        if isinstance(response, dict) and isinstance(response.get("links"), dict):
            found.append(response["links"])
    if isinstance(components.get("links"), dict):
        found.append(components["links"])
    return found


def _rewrite_link_targets(links: list[dict[str, Any]], renames: Mapping[str, str]) -> None:
    """Point one source's links at its operations' new ids (in place)."""
    for entries in links:
        for link in entries.values():
            target = link.get("operationId") if isinstance(link, dict) else None
            if isinstance(target, str) and target in renames:
                link["operationId"] = renames[target]


def _resolves(document: Document, pointer: str) -> bool:
    """Whether a local JSON pointer (``#/paths/~1api~1v1~1products/get``) names something."""
    if not pointer.startswith("#/"):
        return True  # another document: not the merger's to judge
    node: Any = document
    for raw in pointer[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _drop_dangling_links(document: Document, operation_ids: set[str]) -> None:
    """A link to an operation the merged document lacks (a path the gateway does not route to
    that service) would break every client and fuzzer that follows it."""
    for links in _link_maps(document.get("paths") or {}, document.get("components") or {}):
        for name, link in list(links.items()):
            if not isinstance(link, dict):
                continue
            target, pointer = link.get("operationId"), link.get("operationRef")
            if (isinstance(target, str) and target not in operation_ids) or (
                isinstance(pointer, str) and not _resolves(document, pointer)
            ):
                del links[name]


def _local_refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            _local_refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _local_refs(item, found)


def _prune_components(document: Document) -> None:
    """Drop components nothing refers to any more (a service's own error schemas, replaced by
    the shared Problem). Security schemes are named, not referenced, and stay."""
    components: dict[str, Any] = document.get("components") or {}
    reached: set[str] = set()
    pending: set[str] = set()
    _local_refs({k: v for k, v in document.items() if k != "components"}, pending)
    while pending:
        # A reference may point inside a component (``.../Item/properties/id``): it keeps the
        # whole component.
        parts = pending.pop().split("/")
        if len(parts) < 4:
            continue
        ref = "/".join(parts[:4])
        if ref in reached:
            continue
        reached.add(ref)
        name = parts[3].replace("~1", "/").replace("~0", "~")
        _local_refs(components.get(parts[2], {}).get(name), pending)
    for section in COMPONENT_SECTIONS:
        entries = components.get(section)
        if not isinstance(entries, dict):
            continue
        for name in list(entries):
            escaped = name.replace("~", "~0").replace("/", "~1")
            if f"#/components/{section}/{escaped}" not in reached:
                del entries[name]
        if not entries:
            del components[section]


def _add_answer(operation: dict[str, Any], status: int, description: str) -> None:
    """Document one of the gateway's own answers; where the service documents the same status
    (its own 503, say), the description tells both."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    existing = responses.get(str(status))
    existing = existing if isinstance(existing, dict) else {}
    theirs = existing.get("description")
    if isinstance(theirs, str) and theirs and description not in theirs:
        description = f"{theirs} From the gateway: {description}"
    responses[str(status)] = {**existing, "description": description}


def _without_identity_parameters(operation: dict[str, Any]) -> None:
    parameters = operation.get("parameters")
    if isinstance(parameters, list):
        operation["parameters"] = [
            p
            for p in parameters
            if not (
                isinstance(p, dict)
                and p.get("in") == "header"
                and is_identity_header(str(p.get("name", "")))
            )
        ]
        if not operation["parameters"]:
            del operation["parameters"]


class OpenAPIMerger:
    def __init__(self, *, settings: GatewaySettings, upstreams: Mapping[str, Upstream]) -> None:
        self.routes = RouteTable(settings.routes)
        self.public = PublicRoutes(settings.public_routes)
        self.upstreams = upstreams
        self.cache_seconds = settings.openapi_cache_seconds
        self.exempt_paths = frozenset(settings.rate_limit.exempt_paths)
        self.timeout = settings.readiness_timeout_seconds
        self.token_url = settings.token_endpoint
        self._cached: Document | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def document(self, own: Document) -> Document:
        async with self._lock:
            if self._cached is None or time.monotonic() >= self._expires:
                names = sorted(self.routes.upstreams)
                fetched = await asyncio.gather(*(self._fetch(name) for name in names))
                sources = dict(zip(names, fetched, strict=True))
                self._cached = self.merge(own, sources)
                missing = self._cached.get("x-shopstack-missing")
                ttl = RETRY_MISSING_SECONDS if missing else self.cache_seconds
                self._expires = time.monotonic() + ttl
            return self._cached

    async def _fetch(self, name: str) -> Document | None:
        upstream = self.upstreams[name]
        try:
            response = await upstream.open(
                "GET",
                "/openapi.json",
                headers={"Accept": "application/json"},
                idempotent=True,
                client_timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
            try:
                if response.status != 200:
                    raise RuntimeError(f"answered {response.status}")
                document = await response.json(content_type=None)
            finally:
                response.release()
            if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
                raise TypeError("not an OpenAPI document")
        except Exception as error:
            logger.warning("OpenAPI document of %s unavailable: %s", name, error)
            return None
        return document

    def merge(self, own: Document, sources: Mapping[str, Document | None]) -> Document:
        merged: Document = {
            "openapi": "3.1.0",
            "info": {
                "title": "shopstack API",
                "version": "v1",
                "description": (
                    "Every endpoint of the shopstack platform, as served through its gateway. "
                    "Sign in with **Authorize** (OAuth2 password flow against "
                    f"`{self.token_url}`), then try any endpoint."
                ),
            },
            "paths": {},
            "components": {
                "securitySchemes": {
                    SECURITY_SCHEME: {
                        "type": "oauth2",
                        "description": "Access tokens from the users service's token endpoint.",
                        "flows": {"password": {"tokenUrl": self.token_url, "scopes": {}}},
                    }
                }
            },
            "tags": [],
        }
        missing = [name for name, doc in sources.items() if doc is None]
        all_sources: list[tuple[str, Document]] = [(GATEWAY_SOURCE, own)]
        all_sources += [(name, doc) for name, doc in sources.items() if doc is not None]
        operation_ids: set[str] = set()
        for source, document in all_sources:
            self._add(merged, source, copy.deepcopy(document), operation_ids)
        if missing:
            merged["x-shopstack-missing"] = missing
            merged["info"]["description"] += (
                "\n\nNot available right now, so not listed: " + ", ".join(missing) + "."
            )
        if not merged["tags"]:
            del merged["tags"]
        _drop_dangling_links(merged, operation_ids)
        document_problems(merged)
        for _, _, operation in _all_operations(merged):
            limited = operation.get("responses", {}).get("429")
            if isinstance(limited, dict):
                limited.setdefault("headers", {}).update(copy.deepcopy(_RATE_LIMIT_HEADERS))
        _prune_components(merged)
        return merged

    def _add(
        self, merged: Document, source: str, document: Document, operation_ids: set[str]
    ) -> None:
        document = self._add_components(merged["components"], source, document)
        wanted: dict[str, dict[str, Any]] = {}
        for path, item in (document.get("paths") or {}).items():
            upstream = self.routes.upstream_of(path)
            # The gateway's own paths are the ones no upstream serves; an upstream's are the
            # ones the route table sends to it.
            if isinstance(item, dict) and (
                upstream is None if source == GATEWAY_SOURCE else upstream == source
            ):
                wanted[path] = item
        renames: dict[str, str] = {}
        for item in wanted.values():
            for operation in _operations(item):
                operation_id = operation.get("operationId")
                if isinstance(operation_id, str):
                    if operation_id in operation_ids:
                        renames[operation_id] = f"{source}_{operation_id}"
                        operation["operationId"] = operation_id = renames[operation_id]
                    operation_ids.add(operation_id)
        if renames:
            # The source's components are in the merged document as they are (the same
            # objects), so its links there follow too.
            _rewrite_link_targets(_link_maps(wanted, document.get("components") or {}), renames)
        for path, item in wanted.items():
            self._secure(item, path, proxied=source != GATEWAY_SOURCE)
            merged["paths"][path] = item
        known_tags = {tag["name"] for tag in merged["tags"]}
        for tag in document.get("tags") or []:
            if isinstance(tag, dict) and tag.get("name") not in known_tags:
                merged["tags"].append(tag)
                known_tags.add(tag.get("name"))

    def _secure(self, item: dict[str, Any], path: str, *, proxied: bool) -> None:
        """The gateway's word on security replaces the source's: the token scheme on every
        operation that needs a token, no identity headers among the parameters, and the
        gateway's own answers among the responses."""
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            # A proxied route needs a token unless it is public; the gateway's own routes say
            # so themselves (their dependencies declare the scheme).
            needs_token = (
                not self.public.allows(method.upper(), path)
                if proxied
                else bool(operation.get("security"))
            )
            operation.pop("security", None)
            _without_identity_parameters(operation)
            if needs_token:
                operation["security"] = [{SECURITY_SCHEME: []}]
            self._document_answers(operation, path, needs_token=needs_token, proxied=proxied)

    def _document_answers(
        self, operation: dict[str, Any], path: str, *, needs_token: bool, proxied: bool
    ) -> None:
        _add_answer(operation, 401, _UNAUTHORIZED[1] if needs_token else _UNAUTHORIZED[0])
        _add_answer(operation, 500, _INTERNAL)
        if path not in self.exempt_paths:
            _add_answer(operation, 429, _RATE_LIMITED)
        _add_answer(operation, 503, _UNAVAILABLE_PROXIED if proxied else _UNAVAILABLE_OWN)
        if proxied:
            _add_answer(operation, 502, _BAD_GATEWAY)
            _add_answer(operation, 504, _GATEWAY_TIMEOUT)
            if "requestBody" in operation:
                _add_answer(operation, 413, _TOO_LARGE)

    @staticmethod
    def _add_components(components: dict[str, Any], source: str, document: Document) -> Document:
        """Add the source's components; a name already taken by something else is prefixed with
        the source's name, and the source's references follow the rename."""
        renames: dict[str, str] = {}
        theirs: Mapping[str, Any] = document.get("components") or {}
        for section in COMPONENT_SECTIONS:
            for name, value in (theirs.get(section) or {}).items():
                existing = components.get(section, {}).get(name)
                if existing is not None and _canonical(existing) != _canonical(value):
                    ref = f"#/components/{section}/{name}"
                    renames[ref] = f"#/components/{section}/{source}_{name}"
        if renames:
            document = _rewrite_refs(document, renames)
            theirs = document.get("components") or {}
        for section in COMPONENT_SECTIONS:
            for name, value in (theirs.get(section) or {}).items():
                ref = f"#/components/{section}/{name}"
                final = renames.get(ref, ref).rsplit("/", 1)[1]
                components.setdefault(section, {})[final] = value
        return document


def _operations(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [op for method in HTTP_METHODS if isinstance(op := item.get(method), dict)]


def _all_operations(document: Document) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in (document.get("paths") or {}).items()
        if isinstance(item, dict)
        for method in HTTP_METHODS
        if isinstance(operation := item.get(method), dict)
    ]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
