import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter

from shopstack_common.problems import ProblemError
from shopstack_orders.pagination import decode_cursor, encode_cursor

KEY: TypeAdapter[tuple[datetime, uuid.UUID]] = TypeAdapter(tuple[datetime, uuid.UUID])
QUERY = ("orders", "some-user", None)


def test_a_cursor_round_trips_its_key_exactly() -> None:
    key = (datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())
    cursor = encode_cursor(query=QUERY, key=(key[0].isoformat(), key[1]))
    assert decode_cursor(cursor, query=QUERY, key_type=KEY) == key
    # URL-safe, no padding: it goes into a query string as it is.
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _forge(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm90IGpzb24",  # "not json"
        _forge([1, 2]),
        _forge({"v": 2, "q": "x", "k": []}),
        _forge({"v": 1, "k": ["2026-01-01T00:00:00+00:00", str(uuid.uuid4())]}),
    ],
)
def test_anything_else_is_refused_naming_the_cursor(cursor: str) -> None:
    with pytest.raises(ProblemError) as caught:
        decode_cursor(cursor, query=QUERY, key_type=KEY)
    assert caught.value.status == 422
    assert caught.value.errors is not None
    assert [(e["field"], e["location"]) for e in caught.value.errors] == [("cursor", "query")]


def test_a_cursor_with_a_bad_key_is_refused() -> None:
    cursor = encode_cursor(query=QUERY, key=("yesterday", "not-a-uuid"))
    with pytest.raises(ProblemError):
        decode_cursor(cursor, query=QUERY, key_type=KEY)


def test_a_cursor_is_bound_to_its_query() -> None:
    cursor = encode_cursor(query=QUERY, key=(datetime.now(UTC).isoformat(), uuid.uuid4()))
    with pytest.raises(ProblemError) as caught:
        decode_cursor(cursor, query=("orders", "another-user", None), key_type=KEY)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["message"] == "issued for a different sort or filter"
