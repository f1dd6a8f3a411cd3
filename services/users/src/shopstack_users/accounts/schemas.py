"""Request and response shapes of the accounts and user administration areas.

Request schemas refuse unknown fields (marshmallow's default, ``additionalProperties: false``
in OpenAPI), so a body can never carry ``roles`` or ``is_active`` where they are not meant.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from shopstack_users.accounts.models import ROLES
from shopstack_users.fields import NormalisedEmail, StrictBoolean, Text
from shopstack_users.passwords import MAX_LENGTH, MIN_LENGTH, policy_violation

EMAIL_MAX = 254
NAME_MAX = 200


def _email(**kwargs: Any) -> NormalisedEmail:
    return NormalisedEmail(
        validate=validate.Length(max=EMAIL_MAX),
        metadata={"description": "Trimmed and lower-cased; unique across accounts."},
        **kwargs,
    )


def _full_name(**kwargs: Any) -> Text:
    return Text(not_blank=True, validate=validate.Length(min=1, max=NAME_MAX), **kwargs)


def _password(description: str, **kwargs: Any) -> Text:
    return Text(
        load_only=True,
        validate=validate.Length(min=MIN_LENGTH, max=MAX_LENGTH),
        metadata={
            "description": f"{description} Not the email (nor its local part), not a "
            "commonly used password (compared case-insensitively)."
        },
        **kwargs,
    )


class RegisterSchema(Schema):
    email = _email(required=True)
    password = _password("The account's password.", required=True)
    full_name = _full_name(required=True)

    @validates_schema(skip_on_field_errors=False)
    def _password_policy(self, data: dict[str, Any], **_: Any) -> None:
        password = data.get("password")
        if isinstance(password, str):
            problem = policy_violation(password, email=data.get("email"))
            if problem:
                raise ValidationError(f"Password {problem}.", field_name="password")


class UserPublicSchema(Schema):
    id = fields.UUID(required=True, dump_only=True)
    email = fields.String(required=True, dump_only=True)
    full_name = fields.String(required=True, dump_only=True)
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)), required=True, dump_only=True
    )
    created_at = fields.DateTime(required=True, dump_only=True)
    updated_at = fields.DateTime(required=True, dump_only=True)


class UserAdminSchema(UserPublicSchema):
    is_active = fields.Boolean(required=True, dump_only=True)


def _something_to_change(data: dict[str, Any]) -> None:
    if not data:
        raise ValidationError("Nothing to change: send at least one field.")


class MeUpdateSchema(Schema):
    class Meta:
        json_schema: ClassVar[dict[str, Any]] = {
            "minProperties": 1,
            # A new password comes with the current one.
            "dependentRequired": {"password": ["current_password"]},
        }

    full_name = _full_name()
    password = _password("The new password; needs `current_password`.")
    current_password = Text(
        load_only=True,
        validate=validate.Length(min=1, max=MAX_LENGTH),
        metadata={"description": "Required with `password`; counted by the login throttle."},
    )

    @validates_schema
    def _a_change_and_its_proof(self, data: dict[str, Any], **_: Any) -> None:
        _something_to_change(data)
        if "password" in data and not data.get("current_password"):
            raise ValidationError("Required to change the password.", field_name="current_password")


class AdminUserUpdateSchema(Schema):
    class Meta:
        json_schema: ClassVar[dict[str, Any]] = {"minProperties": 1}

    email = _email()
    full_name = _full_name()
    is_active = StrictBoolean(
        metadata={"description": "false also revokes the user's refresh tokens."}
    )

    @validates_schema
    def _a_change(self, data: dict[str, Any], **_: Any) -> None:
        _something_to_change(data)


class RolesSchema(Schema):
    roles = fields.List(
        Text(validate=validate.OneOf(ROLES)),
        required=True,
        validate=validate.Length(min=1, max=len(ROLES)),
        metadata={"uniqueItems": True},
    )

    @validates("roles")
    def _no_duplicates(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("Roles must not repeat.")


class ListUsersQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = Text(
        validate=validate.Length(min=1, max=512),
        metadata={"description": "`next_cursor` of the previous page."},
    )
    email_prefix = Text(validate=validate.Length(min=1, max=EMAIL_MAX))
    role = Text(validate=validate.OneOf(ROLES))


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserAdminSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "null on the last page."}
    )
