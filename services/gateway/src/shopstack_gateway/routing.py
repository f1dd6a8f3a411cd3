"""The route table: which upstream serves a path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopstack_gateway.config import RouteRule


@dataclass(frozen=True)
class Match:
    prefix: str
    upstream: str


class RouteTable:
    """Longest prefix wins; a prefix matches whole path segments only, so ``/api/v1/users``
    serves ``/api/v1/users/42`` but not ``/api/v1/usersettings``."""

    def __init__(self, rules: Sequence[RouteRule]) -> None:
        self._rules = sorted(rules, key=lambda rule: len(rule.prefix), reverse=True)

    def match(self, path: str) -> Match | None:
        for rule in self._rules:
            prefix = rule.prefix.rstrip("/")
            if path == prefix or path.startswith(prefix + "/"):
                return Match(prefix=prefix, upstream=rule.upstream)
        return None

    @property
    def upstreams(self) -> set[str]:
        return {rule.upstream for rule in self._rules}
