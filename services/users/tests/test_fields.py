"""The request field types against the patterns they publish: a client that validates
against the OpenAPI document (schemathesis does, with jsonschema_rs and ECMA-262 regex
semantics) and the service must agree on every value."""

from __future__ import annotations

import re
import sys

import jsonschema_rs
import pytest
from marshmallow import Schema, ValidationError

from shopstack_users.fields import NOT_BLANK_PATTERN, TEXT_PATTERN, Text

# Whitespace by either engine's idea of it, every C0/C1 control, the Latin-1 range, the
# General Punctuation block and a few more: the code points where `\s` differs, with
# ordinary letters around them.
_PYTHON_SPACE = {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}
CODE_POINTS = sorted(
    _PYTHON_SPACE
    | set(range(0x100))
    | set(range(0x2000, 0x2070))
    | {0x180E, 0x3000, 0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF}
)
VALUES = [v for c in CODE_POINTS for v in (chr(c), f" {chr(c)} ", f"a{chr(c)}")]


class _Name(Schema):
    name = Text(not_blank=True)


class _Note(Schema):
    note = Text()


def _accepted(schema: Schema, key: str, value: str) -> bool:
    try:
        schema.load({key: value})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("schema", "key", "pattern"),
    [(_Name(), "name", NOT_BLANK_PATTERN), (_Note(), "note", TEXT_PATTERN)],
    ids=["not_blank", "text"],
)
def test_the_published_pattern_accepts_exactly_what_the_field_accepts(
    schema: Schema, key: str, pattern: str
) -> None:
    """By JSON Schema's engine and by Python's. U+001F was once valid by the pattern to
    jsonschema_rs (its `\\s` has no U+001C..U+001F nor U+0085) and blank to the field."""
    by_json_schema = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    by_python = re.compile(pattern)
    disagree = [
        f"{value!r}: field {field}, jsonschema_rs {ecma}, re {python}"
        for value in VALUES
        if len(
            {
                field := _accepted(schema, key, value),
                ecma := by_json_schema.is_valid(value),
                python := bool(by_python.search(value)),
            }
        )
        > 1
    ]
    assert not disagree, disagree[:20]


def test_every_python_whitespace_is_blank_to_both_engines() -> None:
    by_json_schema = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK_PATTERN})
    valid = [hex(c) for c in _PYTHON_SPACE if by_json_schema.is_valid(chr(c) * 2)]
    assert not valid
