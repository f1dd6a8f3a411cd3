"""Values a module builds once per process, on first use: SQL statements, mostly.

A statement of a few CTEs costs more to build than to send, so the hot paths build theirs
once. ``built_once(builder)`` is that cache; the builder runs on the first call, not when
the module is imported.

The tests forget every such value before each test (``forget_all``), so each test that uses
one builds it again: a change to a builder (a mutation test's mutant, for one) is met by
every test that runs the statement, not only by the first test of a run, and a module
imported before the change still builds the changed statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_CACHES: list[functools._lru_cache_wrapper[object]] = []


def built_once(builder: Callable[[], T]) -> Callable[[], T]:
    """``builder``'s value, built on the first call and kept for the process."""
    cached = functools.cache(builder)
    _CACHES.append(cached)
    return cached


def forget_all() -> None:
    """Build every value again on its next use."""
    for cached in _CACHES:
        cached.cache_clear()
