"""Shapes of the token area, for the OpenAPI document. The token and revocation endpoints
parse their form bodies themselves: their errors follow RFC 6749 §5.2, not problem+json."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, fields, validate

from shopstack_users.fields import TEXT_PATTERN, Text
from shopstack_users.tokens.service import SCOPE_TOKEN

# Nothing legitimate is longer; the router refuses more before any work (argon2 included).
MAX_PARAMETER_LENGTH = 4096
GRANT_TYPES = ("password", "refresh_token", "client_credentials")
# RFC 6749 §3.3: scope = scope-token *( SP scope-token )
SCOPE_PATTERN = f"^{SCOPE_TOKEN}( {SCOPE_TOKEN})*$"
# Parameters the endpoints do not know are ignored (RFC 6749 §3.2), but each is one string:
# a parameter sent twice is an invalid_request.
OTHER_PARAMETERS = {"type": "string", "maxLength": MAX_PARAMETER_LENGTH, "pattern": TEXT_PATTERN}


def _parameter(description: str, **kwargs: Any) -> Text:
    return Text(
        validate=validate.Length(min=1, max=MAX_PARAMETER_LENGTH),
        metadata={"description": description, **kwargs.pop("metadata", {})},
        **kwargs,
    )


def _grant(grant_type: str, *required: str) -> dict[str, Any]:
    return {"properties": {"grant_type": {"const": grant_type}}, "required": list(required)}


class TokenRequestSchema(Schema):
    class Meta:
        unknown = INCLUDE
        json_schema: ClassVar[dict[str, Any]] = {
            "additionalProperties": OTHER_PARAMETERS,
            # What each grant needs; client_credentials authenticates with HTTP Basic or with
            # client_id and client_secret in the body.
            "oneOf": [
                _grant("password", "username", "password"),
                _grant("refresh_token", "refresh_token"),
                _grant("client_credentials"),
            ],
        }

    grant_type = Text(required=True, validate=validate.OneOf(GRANT_TYPES))
    username = _parameter("password grant: the email")
    password = _parameter("password grant")
    refresh_token = _parameter("refresh_token grant")
    scope = _parameter(
        "space-separated scope tokens (default: all the caller may have); a refresh may "
        "narrow the scope, never widen it",
        metadata={"pattern": SCOPE_PATTERN},
    )
    client_id = _parameter("client_credentials grant, unless sent with HTTP Basic")
    client_secret = _parameter("client_credentials grant, unless sent with HTTP Basic")


class TokenResponseSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True)
    refresh_token = fields.String()
    scope = fields.String(required=True)


class OAuthErrorSchema(Schema):
    error = fields.String(
        required=True,
        validate=validate.OneOf(
            [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unsupported_grant_type",
                "invalid_scope",
            ]
        ),
    )
    error_description = fields.String()


class RevokeRequestSchema(Schema):
    class Meta:
        unknown = INCLUDE
        json_schema: ClassVar[dict[str, Any]] = {"additionalProperties": OTHER_PARAMETERS}

    token = _parameter("the refresh token", required=True)
    # RFC 7009 §2.1: a hint the server does not understand is ignored, so any value goes.
    token_type_hint = Text(
        validate=validate.Length(max=MAX_PARAMETER_LENGTH),
        metadata={"description": "`refresh_token` or `access_token`; not needed"},
    )


class JwkSchema(Schema):
    kty = fields.String(required=True)
    crv = fields.String(required=True)
    x = fields.String(required=True)
    kid = fields.String(required=True)
    alg = fields.String(required=True)
    use = fields.String(required=True)


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True)
