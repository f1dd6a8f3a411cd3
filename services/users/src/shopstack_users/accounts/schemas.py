"""Request and response shapes of the accounts and user administration areas."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from shopstack_users.models import ROLES
from shopstack_users.passwords import MAX_LENGTH, MIN_LENGTH, policy_violation

EMAIL_MAX = 254
NAME_MAX = 200


class NormalisedEmail(fields.Email):
    """An email, trimmed and lower-cased before it is validated and stored."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            value = value.strip().lower()
        result: str = super()._deserialize(value, attr, data, **kwargs)
        return result


class StrictBoolean(fields.Boolean):
    """JSON true/false only: "yes" or 1 is a wrong type, not a boolean."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _password_field(**kwargs: Any) -> fields.String:
    return fields.String(
        load_only=True, validate=validate.Length(min=MIN_LENGTH, max=MAX_LENGTH), **kwargs
    )


class RegisterSchema(Schema):
    email = NormalisedEmail(required=True, validate=validate.Length(max=EMAIL_MAX))
    password = _password_field(required=True)
    full_name = fields.String(required=True, validate=[validate.Length(max=NAME_MAX), _not_blank])

    @validates_schema(skip_on_field_errors=False)
    def _password_policy(self, data: dict[str, Any], **_: Any) -> None:
        password = data.get("password")
        if isinstance(password, str):
            problem = policy_violation(password, email=data.get("email"))
            if problem:
                raise ValidationError(f"Password {problem}.", field_name="password")


class UserPublicSchema(Schema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    full_name = fields.String(dump_only=True)
    roles = fields.List(fields.String(), dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class UserAdminSchema(UserPublicSchema):
    is_active = fields.Boolean(dump_only=True)


class MeUpdateSchema(Schema):
    full_name = fields.String(validate=[validate.Length(max=NAME_MAX), _not_blank])
    password = _password_field(metadata={"description": "the new password"})
    current_password = fields.String(
        load_only=True,
        validate=validate.Length(max=MAX_LENGTH),
        metadata={"description": "required with password"},
    )

    @validates_schema
    def _current_password_with_new(self, data: dict[str, Any], **_: Any) -> None:
        if "password" in data and not data.get("current_password"):
            raise ValidationError("Required to change the password.", field_name="current_password")


class AdminUserUpdateSchema(Schema):
    email = NormalisedEmail(validate=validate.Length(max=EMAIL_MAX))
    full_name = fields.String(validate=[validate.Length(max=NAME_MAX), _not_blank])
    is_active = StrictBoolean()


class RolesSchema(Schema):
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        required=True,
        validate=validate.Length(min=1, max=len(ROLES)),
    )

    @validates("roles")
    def _no_duplicates(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("Roles must not repeat.")


class ListUsersQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(min=1, max=512))
    email_prefix = fields.String(validate=validate.Length(min=1, max=EMAIL_MAX))
    role = fields.String(validate=validate.OneOf(ROLES))


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserAdminSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
