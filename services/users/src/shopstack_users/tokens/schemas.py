"""Shapes of the token area, for the OpenAPI document. The token and revocation endpoints
parse their form bodies themselves: their errors follow RFC 6749 §5.2, not problem+json."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class TokenRequestSchema(Schema):
    grant_type = fields.String(
        required=True,
        validate=validate.OneOf(["password", "refresh_token", "client_credentials"]),
    )
    username = fields.String(metadata={"description": "password grant: the email"})
    password = fields.String(metadata={"description": "password grant"})
    refresh_token = fields.String(metadata={"description": "refresh_token grant"})
    scope = fields.String(metadata={"description": "space-separated scopes (optional)"})
    client_id = fields.String(
        metadata={"description": "client_credentials grant, unless sent with HTTP Basic"}
    )
    client_secret = fields.String(
        metadata={"description": "client_credentials grant, unless sent with HTTP Basic"}
    )


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
    token = fields.String(required=True)
    token_type_hint = fields.String()


class JwkSchema(Schema):
    kty = fields.String(required=True)
    crv = fields.String(required=True)
    x = fields.String(required=True)
    kid = fields.String(required=True)
    alg = fields.String(required=True)
    use = fields.String(required=True)


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True)
