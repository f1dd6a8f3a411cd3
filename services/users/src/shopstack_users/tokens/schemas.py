"""Shapes of the token area, for the OpenAPI document. The token and revocation endpoints
parse their form bodies themselves: their errors follow RFC 6749 §5.2, not problem+json."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate

from shopstack_users.fields import Text

# Nothing legitimate is longer; the router refuses more before any work (argon2 included).
MAX_PARAMETER_LENGTH = 4096
GRANT_TYPES = ("password", "refresh_token", "client_credentials")


def _parameter(description: str, **kwargs: Any) -> Text:
    return Text(
        validate=validate.Length(min=1, max=MAX_PARAMETER_LENGTH),
        metadata={"description": description},
        **kwargs,
    )


class TokenRequestSchema(Schema):
    class Meta:
        # RFC 6749 §3.2: unrecognised parameters are ignored.
        unknown = INCLUDE

    grant_type = Text(required=True, validate=validate.OneOf(GRANT_TYPES))
    username = _parameter("password grant (required): the email")
    password = _parameter("password grant (required)")
    refresh_token = _parameter("refresh_token grant (required)")
    scope = _parameter("space-separated scope tokens (optional; default: all allowed)")
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

    token = _parameter("the refresh token", required=True)
    token_type_hint = _parameter("`refresh_token` or `access_token` (RFC 7009; not needed)")


class JwkSchema(Schema):
    kty = fields.String(required=True)
    crv = fields.String(required=True)
    x = fields.String(required=True)
    kid = fields.String(required=True)
    alg = fields.String(required=True)
    use = fields.String(required=True)


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True)
