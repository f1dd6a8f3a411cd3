"""What the service's inputs accept, written once for every request.

A JSON request body takes exactly the fields it documents (``additionalProperties: false``:
an unknown field is a 422 naming it), each of its JSON type: ``"5"`` is no integer and ``1``
no boolean. Pydantic would otherwise coerce them (strict mode stops that) and accept requests
the published schema calls wrong. Two JSON forms differ from the Python ones, and are spelled
out: an integer is any JSON number without a fraction (JSON Schema counts ``5.0`` as one),
and an id arrives as a string (``JsonUuid``).

A boolean in a query is ``true`` or ``false`` (``QueryFlag``). Text, in a body or a query, is
what PostgreSQL can store: no NUL character (``Text``). An
instant in a query is an RFC 3339 date-time with its offset (``Instant``), never a number of
seconds, which pydantic would otherwise read as one, and one that stays within years 1 to
9999 once read in UTC: ``9999-12-31T23:59:59-14:00`` is year 10000 there, which no Python
datetime (nor the driver) can hold.
"""

from __future__ import annotations

import re
import types
import typing
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)


def _admits_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) is Annotated:
        return _admits_int(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_admits_int(member) for member in typing.get_args(annotation))
    return False


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    _integer_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._integer_fields = frozenset(
            name for name, info in cls.model_fields.items() if _admits_int(info.annotation)
        )

    @field_validator("*", mode="before")
    @classmethod
    def _integral_number_is_an_integer(cls, value: Any, info: ValidationInfo) -> Any:
        if (
            isinstance(value, float)
            and value.is_integer()
            and info.field_name in cls._integer_fields
        ):
            return int(value)
        return value


# JSON has no UUID type: an id arrives as its canonical string.
JsonUuid = Annotated[uuid.UUID, Field(strict=False)]

Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("Input should be an RFC 3339 date-time with an offset")
    return value


def _representable_in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "Input should be an instant between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        ) from None


def _true_or_false(value: Any) -> Any:
    if isinstance(value, str) and value not in {"true", "false"}:
        raise ValueError("Input should be true or false")
    return value


# A boolean in a query: "true" or "false", as the document's JSON Schema says, not the
# "1", "yes" or "on" pydantic would otherwise read as one.
QueryFlag = Annotated[bool, BeforeValidator(_true_or_false)]

Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_representable_in_utc)]
