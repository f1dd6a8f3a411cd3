"""Request and response shapes of the accounts area."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=12, max=128)
    )
    full_name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UserPublicSchema(Schema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    full_name = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
