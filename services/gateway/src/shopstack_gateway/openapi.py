"""One OpenAPI document for the whole API, as clients see it through the gateway.

It merges the gateway's own routes with each upstream's ``/openapi.json``, keeping only the
paths the route table sends to that upstream (so ``/healthz`` of a service never shows). The
gateway decides security, not the services: every operation that needs a token gets the OAuth2
password-flow scheme pointing at the token endpoint, so Swagger UI's "Authorize" works, and the
identity headers the gateway sets are removed from the documented parameters. Component names
that two sources use for different things are prefixed with the source's name.

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
from shopstack_gateway.config import GatewaySettings
from shopstack_gateway.routing import PublicRoutes, RouteTable
from shopstack_gateway.upstreams import Upstream

logger = logging.getLogger(__name__)

SECURITY_SCHEME = "OAuth2Password"
GATEWAY_SOURCE = "gateway"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
COMPONENT_SECTIONS = (
    "schemas", "responses", "parameters", "examples", "requestBodies", "headers", "links",
    "callbacks", "pathItems",
)  # fmt: skip
RETRY_MISSING_SECONDS = 5.0

Document = dict[str, Any]


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in renames:
            node = {**node, "$ref": renames[ref]}
        return {key: _rewrite_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


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
                "GET", "/openapi.json",
                headers={"Accept": "application/json"},
                idempotent=True,
                client_timeout=aiohttp.ClientTimeout(total=self.timeout),
            )  # fmt: skip
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
        return merged

    def _add(
        self, merged: Document, source: str, document: Document, operation_ids: set[str]
    ) -> None:
        document = self._add_components(merged["components"], source, document)
        for path, item in (document.get("paths") or {}).items():
            upstream = self.routes.upstream_of(path)
            # The gateway's own paths are the ones no upstream serves; an upstream's are the
            # ones the route table sends to it.
            wanted = upstream is None if source == GATEWAY_SOURCE else upstream == source
            if wanted and isinstance(item, dict):
                self._secure(item, path, public_ok=upstream is not None)
                for operation in _operations(item):
                    operation_id = operation.get("operationId")
                    if isinstance(operation_id, str):
                        if operation_id in operation_ids:
                            operation["operationId"] = operation_id = f"{source}_{operation_id}"
                        operation_ids.add(operation_id)
                merged["paths"][path] = item
        known_tags = {tag["name"] for tag in merged["tags"]}
        for tag in document.get("tags") or []:
            if isinstance(tag, dict) and tag.get("name") not in known_tags:
                merged["tags"].append(tag)
                known_tags.add(tag.get("name"))

    def _secure(self, item: dict[str, Any], path: str, *, public_ok: bool) -> None:
        """The gateway's word on security replaces the source's: the token scheme on every
        operation that needs a token, no identity headers among the parameters."""
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            operation.pop("security", None)
            _without_identity_parameters(operation)
            if not (public_ok and self.public.allows(method.upper(), path)):
                operation["security"] = [{SECURITY_SCHEME: []}]

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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
