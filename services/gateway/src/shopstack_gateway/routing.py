"""The route table (which upstream serves a path) and the public routes (which need no token).

Both match whole path segments, so ``/api/v1/users`` covers ``/api/v1/users/42`` but not
``/api/v1/usersettings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopstack_common.asgi import Scope
from shopstack_gateway.config import PublicRoute, RouteRule


def _covers(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


MATCH_SCOPE_KEY = "shopstack.route_match"


@dataclass(frozen=True)
class Match:
    prefix: str
    upstream: str

    @property
    def name(self) -> str:
        return f"{self.prefix}/*"


class RouteTable:
    """Longest prefix wins."""

    def __init__(self, rules: Sequence[RouteRule]) -> None:
        self._matches = sorted(
            (Match(prefix=rule.prefix.rstrip("/"), upstream=rule.upstream) for rule in rules),
            key=lambda match: len(match.prefix),
            reverse=True,
        )

    def match(self, path: str) -> Match | None:
        for match in self._matches:
            if _covers(match.prefix, path):
                return match
        return None

    @property
    def upstreams(self) -> set[str]:
        return {match.upstream for match in self._matches}

    def upstream_of(self, path: str) -> str | None:
        match = self.match(path)
        return match.upstream if match else None

    def route_name(self, scope: Scope) -> str | None:
        """The route of a proxied request, for its metrics and access log line
        (``/api/v1/products/*``), whoever answered it; None off the table. Dispatch leaves its
        match in the scope; a request refused before dispatch is matched here."""
        match = scope[MATCH_SCOPE_KEY] if MATCH_SCOPE_KEY in scope else self.match(scope["path"])
        return match.name if match else None


class PublicRoutes:
    """Proxied requests that pass without a token; every other proxied request needs one."""

    def __init__(self, rules: Sequence[PublicRoute]) -> None:
        self._rules = [
            (rule.prefix.rstrip("/"), frozenset(m.upper() for m in rule.methods)) for rule in rules
        ]

    def allows(self, method: str, path: str) -> bool:
        for prefix, methods in self._rules:
            if _covers(prefix, path) and (not methods or method in methods):
                return True
        return False
