"""Query strings and form bodies must be UTF-8 text: one rule for every service.

Percent-encoding can carry any bytes, and frameworks decode what is not UTF-8 their own way:
Starlette puts U+FFFD in its place, werkzeug keeps the percent-escapes as text. Either way
the service goes on with a value the client never sent (a search for ``a%ED%A0%80b``, the
encoded lone surrogate). Such a request is refused as the 400 ``malformed-request`` ("bytes
that are not valid text"), naming each field, before any framework decodes it.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from shopstack_common.problems import MALFORMED_REQUEST, FieldError, ProblemError

MESSAGE = "Not UTF-8 text once percent-decoded."


def undecodable_fields(encoded: bytes, location: str) -> list[FieldError]:
    """The fields of ``application/x-www-form-urlencoded`` bytes (a query string or a form
    body) whose name or value is not UTF-8."""
    errors: list[FieldError] = []
    for pair in encoded.split(b"&"):
        name, _, value = pair.partition(b"=")
        raw_name, raw_value = (unquote_to_bytes(part.replace(b"+", b" ")) for part in (name, value))
        try:
            raw_value.decode()
            raw_name.decode()
        except UnicodeDecodeError:
            shown = raw_name.decode(errors="replace")
            errors.append({"field": shown, "location": location, "message": MESSAGE})
    return errors


def refuse_undecodable(encoded: bytes, location: str) -> None:
    """Raise the 400 problem naming every field of ``encoded`` that is not UTF-8 text."""
    errors = undecodable_fields(encoded, location)
    if errors:
        names = ", ".join(error["field"] for error in errors)
        raise ProblemError(MALFORMED_REQUEST, f"Not UTF-8 text: {names}.", errors=errors)
