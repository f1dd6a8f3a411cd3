"""HTTP routes of the token area: token (RFC 6749), revocation (RFC 7009) and the JWKS.

The token and revocation endpoints read their form bodies themselves: RFC 6749 says what a
malformed request is and how its error looks (§5.2, ``application/json``), which is not the
platform's problem+json. Their other errors (a throttled login, no signing key, the database
away) are problems like everywhere else. Nothing they answer may be cached.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from flask import Response, json, request

from shopstack_common.problems import (
    BODY_TOO_LARGE,
    DATABASE_UNAVAILABLE,
    NO_SIGNING_KEY,
    TOO_MANY_FAILED_LOGINS,
)
from shopstack_users.blueprint import Blueprint
from shopstack_users.fields import is_storable
from shopstack_users.metrics import TOKEN_ERRORS
from shopstack_users.openapi import problem_responses
from shopstack_users.resources import resources
from shopstack_users.tokens import service
from shopstack_users.tokens.schemas import (
    MAX_PARAMETER_LENGTH,
    JwksSchema,
    OAuthErrorSchema,
    RevokeRequestSchema,
    TokenRequestSchema,
    TokenResponseSchema,
)

blp = Blueprint("tokens", __name__, description="OAuth2 tokens and signing keys")

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(description: str, schema: type, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


OAUTH_ERRORS = {
    "400": _json(
        "RFC 6749 §5.2 error: `invalid_request` (missing, repeated or oversized parameters, "
        "not form-encoded), `invalid_grant`, `unsupported_grant_type` or `invalid_scope`",
        OAuthErrorSchema,
    ),
    "401": _json(
        "`invalid_client`: client authentication failed",
        OAuthErrorSchema,
        headers={
            "WWW-Authenticate": {
                "description": "The Basic challenge (RFC 7617).",
                "schema": {"type": "string"},
            }
        },
    ),
}


@blp.after_request
def _tokens_are_never_cached(response: Response) -> Response:
    # Every answer of the token and revocation endpoints, errors included (RFC 6749 §5.1).
    if request.endpoint in {"tokens.token", "tokens.revoke"}:
        response.headers.update(NO_STORE)
    return response


def oauth_error_response(error: service.OAuthError) -> Response:
    body = {"error": error.error, "error_description": error.description}
    response = Response(json.dumps(body), status=error.status, mimetype="application/json")
    response.headers.update(error.headers)
    return response


def _form() -> dict[str, str]:
    """The form parameters; RFC 6749 §3.2 forbids repeating one."""
    if request.mimetype != FORM:
        raise service.OAuthError("invalid_request", f"The body must be {FORM}.")
    form = request.form
    params: dict[str, str] = {}
    for name in form:
        values = form.getlist(name)
        if len(values) > 1:
            raise service.OAuthError("invalid_request", f"Parameter {name} is repeated.")
        if len(values[0]) > MAX_PARAMETER_LENGTH:
            raise service.OAuthError("invalid_request", f"Parameter {name} is too long.")
        if not is_storable(values[0]):
            raise service.OAuthError("invalid_request", f"Parameter {name} holds a NUL character.")
        params[name] = values[0]
    return params


def _required(params: dict[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not params.get(name)]
    if missing:
        raise service.OAuthError("invalid_request", f"Missing parameter: {', '.join(missing)}.")
    return [params[name] for name in names]


def _client_credentials(params: dict[str, str]) -> tuple[str, str]:
    """HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or client_id/client_secret in the
    body; using both is an invalid_request."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in params:
            raise service.OAuthError(
                "invalid_request", "Use one client authentication method, not two."
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise service.invalid_client() from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise service.invalid_client()
        return unquote_plus(client_id), unquote_plus(secret)
    client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id or not secret:
        raise service.invalid_client(
            "Client authentication is required (HTTP Basic or client_id and client_secret)."
        )
    return client_id, secret


def _issuer() -> service.Issuer:
    found = resources()
    return service.Issuer(
        settings=found.settings,
        keys=found.keys,
        passwords=found.passwords,
        throttle=found.login_throttle,
    )


def _grant(params: dict[str, str]) -> service.TokenResponse:
    (grant_type,) = _required(params, "grant_type")
    sessions = resources().sessions
    scope = params.get("scope")
    if grant_type == "password":
        username, password = _required(params, "username", "password")
        return service.password_grant(
            sessions=sessions,
            issuer=_issuer(),
            username=username,
            password=password,
            scope=scope,
            client_address=request.remote_addr or "unknown",
        )
    if grant_type == "refresh_token":
        (refresh_token,) = _required(params, "refresh_token")
        return service.refresh_grant(
            sessions=sessions, issuer=_issuer(), refresh_token=refresh_token, scope=scope
        )
    if grant_type == "client_credentials":
        client_id, secret = _client_credentials(params)
        return service.client_credentials_grant(
            sessions=sessions,
            issuer=_issuer(),
            client_id=client_id,
            client_secret=secret,
            scope=scope,
        )
    raise service.OAuthError(
        "unsupported_grant_type", f"Grant type {grant_type!r} is not supported."
    )


@blp.post("/api/v1/auth/token")
@blp.doc(
    operationId="issueToken",
    summary="Issue tokens (OAuth2 password, refresh_token and client_credentials grants)",
    # A service client may authenticate with HTTP Basic; nobody else authenticates here.
    security=[{}, {"clientBasic": []}],
    requestBody={"required": True, "content": {FORM: {"schema": TokenRequestSchema}}},
    responses={
        "200": _json(
            "Tokens",
            TokenResponseSchema,
            links={
                "readMe": {
                    "operationId": "getMe",
                    "description": "Call the API as the user the token was issued to.",
                    "parameters": {"header.Authorization": "Bearer {$response.body#/access_token}"},
                },
                "refresh": {
                    "operationId": "issueToken",
                    "requestBody": {
                        "grant_type": "refresh_token",
                        "refresh_token": "$response.body#/refresh_token",
                    },
                },
                "revoke": {
                    "operationId": "revokeToken",
                    "requestBody": {"token": "$response.body#/refresh_token"},
                },
            },
        ),
        **OAUTH_ERRORS,
        **problem_responses(
            BODY_TOO_LARGE, TOO_MANY_FAILED_LOGINS, NO_SIGNING_KEY, DATABASE_UNAVAILABLE
        ),
    },
)
def token() -> Response:
    grant_type = request.form.get("grant_type", "") if request.mimetype == FORM else ""
    try:
        issued = _grant(_form())
    except service.OAuthError as error:
        TOKEN_ERRORS.labels(_known_grant(grant_type), error.error).inc()
        return oauth_error_response(error)
    return Response(json.dumps(issued.as_dict()), status=200, mimetype="application/json")


def _known_grant(grant_type: str) -> str:
    # Metric labels stay few: whatever else a client sends counts as "other".
    if grant_type in {"password", "refresh_token", "client_credentials"}:
        return grant_type
    return "other"


@blp.post("/api/v1/auth/revoke")
@blp.doc(
    operationId="revokeToken",
    summary="Revoke a refresh token and the tokens rotated from the same login (RFC 7009)",
    requestBody={"required": True, "content": {FORM: {"schema": RevokeRequestSchema}}},
    responses={
        "200": {"description": "Revoked, or the token was not known"},
        "400": OAUTH_ERRORS["400"],
        **problem_responses(BODY_TOO_LARGE, DATABASE_UNAVAILABLE),
    },
)
def revoke() -> Response:
    try:
        params = _form()
        (token_value,) = _required(params, "token")
    except service.OAuthError as error:
        return oauth_error_response(error)
    service.revoke(sessions=resources().sessions, token=token_value)
    return Response(status=200)


@blp.get("/.well-known/jwks.json")
@blp.response(200, JwksSchema)
@blp.doc(operationId="getJwks")
def jwks() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The public keys that verify access tokens (RFC 7517)

    Every configured key, the signing one first; new keys appear within
    `JWT_SIGNING_KEYS_RELOAD_SECONDS` of being added."""
    found = resources()
    max_age = found.settings.jwks_max_age_seconds
    return found.keys.jwks(), 200, {"Cache-Control": f"public, max-age={max_age}"}
