"""The field types of the service's request schemas, each saying in OpenAPI what it accepts.

Every string a request carries is ``Text``: PostgreSQL cannot store a NUL character and no
UTF-8 text holds an unpaired surrogate, so both are refused as a 422 naming the field
instead of failing somewhere below.
"""

from __future__ import annotations

import re
from typing import Any

import idna
from marshmallow import fields

# Matches what ``Text`` refuses. JSON Schema's `pattern` is the same rule, the other way round.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
TEXT_PATTERN = "^[^\\u0000]*$"
# Whitespace as Python's str.isspace and str.strip see it, spelled out: JSON Schema's `\s`
# is ECMA-262's, which leaves out U+001C..U+001F and U+0085 and adds U+FEFF, so a pattern
# with `\s` would call valid a name the service finds blank.
WHITESPACE_CLASS = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# At least one character that is not whitespace (and still no NUL).
NOT_BLANK_PATTERN = f"^[^\\u0000]*[^{WHITESPACE_CLASS}\\u0000][^\\u0000]*$"
UNSTORABLE_MESSAGE = "Must not contain NUL characters or unpaired surrogates."


def is_storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text`` (and UTF-8 can encode it)."""
    return _UNSTORABLE.search(text) is None


class Text(fields.String):
    """A string without NUL characters or unpaired surrogates. ``not_blank`` also refuses
    a value that is empty or only whitespace."""

    def __init__(self, *, not_blank: bool = False, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("pattern", NOT_BLANK_PATTERN if not_blank else TEXT_PATTERN)
        super().__init__(metadata=metadata, **kwargs)
        self.not_blank = not_blank
        self.error_messages.update(
            unstorable=UNSTORABLE_MESSAGE,
            blank="Must not be blank.",
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if not is_storable(text):
            raise self.make_error("unstorable")
        if self.not_blank and not text.strip():
            raise self.make_error("blank")
        return text


def normalise_email(email: str) -> str:
    """The one form an address is stored and looked up in: trimmed, lower-cased, its domain
    in Unicode (IDNA 2008 with UTS 46 mapping), so ``bücher.example``,
    ``xn--bcher-kva.example`` and ``BÜCHER.example`` are one domain and one account. Unicode
    rather than the A-label, because that is what the person typed and reads. A domain that
    is no valid IDN stays as it is, lower-cased; the Email field judges it."""
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return email.strip().lower()
    try:
        domain = idna.decode(domain, uts46=True)
    except (idna.IDNAError, UnicodeError):
        domain = domain.lower()
    return f"{local.lower()}@{domain}"


class NormalisedEmail(fields.Email):
    """An email in its one stored form (``normalise_email``) before it is validated."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error_messages["unstorable"] = UNSTORABLE_MESSAGE

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            if not is_storable(value):
                raise self.make_error("unstorable")
            value = normalise_email(value)
        result: str = super()._deserialize(value, attr, data, **kwargs)
        return result


class StrictBoolean(fields.Boolean):
    """JSON true/false only: "yes" or 1 is a wrong type, not a boolean."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value
