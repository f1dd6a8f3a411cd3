"""Keyset pagination with opaque cursors.

A cursor is the sort key of the last row of a page, base64url-encoded JSON, bound to the
query that produced it: it carries a digest of the sort and filters, so a cursor replayed
with other parameters is refused rather than silently skipping or repeating rows. Keyset
pages stay correct while rows are inserted between requests, which offset pages do not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from shopstack_common.problems import INVALID_CURSOR, ProblemError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_VERSION = 1

# What encode_cursor makes: unpadded base64url.
Cursor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`next_cursor` of the previous page, passed back as it came, with the same "
        "filters and sort.",
    ),
]

T = TypeVar("T")
K = TypeVar("K")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None


def _query_digest(query: Sequence[object]) -> str:
    canonical = json.dumps([str(part) for part in query], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(*, query: Sequence[object], key: Sequence[object]) -> str:
    payload = {"v": _VERSION, "q": _query_digest(query), "k": [str(part) for part in key]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _invalid_cursor(message: str) -> ProblemError:
    return ProblemError(
        INVALID_CURSOR,
        f"The cursor is not valid for this list: {message}.",
        errors=[{"field": "cursor", "location": "query", "message": message}],
    )


def decode_cursor(cursor: str, *, query: Sequence[object], key_type: TypeAdapter[K]) -> K:
    """The sort key a cursor carries, validated as ``key_type``; 422 naming ``cursor`` when it
    is malformed or was made for another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _invalid_cursor("not a cursor this service issued") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise _invalid_cursor("not a cursor this service issued")
    if payload.get("q") != _query_digest(query):
        raise _invalid_cursor("issued for a different sort or filter")
    try:
        return key_type.validate_python(payload.get("k"))
    except ValidationError:
        raise _invalid_cursor("not a cursor this service issued") from None
