"""HTTP routes of the token area: token (RFC 6749), revocation (RFC 7009) and the JWKS."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from flask import Response, json, request
from flask_smorest import Blueprint

from shopstack_users.errors import ProblemError
from shopstack_users.extensions import db, security, settings
from shopstack_users.metrics import TOKEN_ERRORS
from shopstack_users.throttle import LoginThrottle
from shopstack_users.tokens import service
from shopstack_users.tokens.schemas import (
    JwksSchema,
    OAuthErrorSchema,
    RevokeRequestSchema,
    TokenRequestSchema,
    TokenResponseSchema,
)

blp = Blueprint("tokens", __name__, description="OAuth2 tokens and signing keys")

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Nothing legitimate is longer; refusing early keeps argon2 away from huge inputs.
MAX_PARAMETER_LENGTH = 4096


def _json(description: str, schema: type) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OAUTH_ERRORS = {
    "400": _json("RFC 6749 §5.2 error", OAuthErrorSchema),
    "401": _json("invalid_client", OAuthErrorSchema),
}


def oauth_error_response(error: service.OAuthError) -> Response:
    body = {"error": error.error, "error_description": error.description}
    response = Response(json.dumps(body), status=error.status, mimetype="application/json")
    response.headers.update(NO_STORE)
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
        unauthorized = service.OAuthError(
            "invalid_client",
            "Client authentication failed.",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="shopstack"'},
        )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise unauthorized
        return unquote_plus(client_id), unquote_plus(secret)
    client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id or not secret:
        raise service.OAuthError(
            "invalid_client",
            "Client authentication is required (HTTP Basic or client_id and client_secret).",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="shopstack"'},
        )
    return client_id, secret


def _issuer() -> service.Issuer:
    config = settings()
    return service.Issuer(
        settings=config,
        keys=security.keys,
        passwords=security.passwords,
        throttle=LoginThrottle(
            max_failures=config.login_max_failures,
            window_seconds=config.login_failure_window_seconds,
        ),
    )


def _grant(params: dict[str, str]) -> service.TokenResponse:
    (grant_type,) = _required(params, "grant_type")
    issuer = _issuer()
    scope = params.get("scope")
    if grant_type == "password":
        username, password = _required(params, "username", "password")
        return service.password_grant(
            session=db.session,
            issuer=issuer,
            username=username,
            password=password,
            scope=scope,
            client_address=request.remote_addr or "unknown",
        )
    if grant_type == "refresh_token":
        (refresh_token,) = _required(params, "refresh_token")
        return service.refresh_grant(
            session=db.session, issuer=issuer, refresh_token=refresh_token, scope=scope
        )
    if grant_type == "client_credentials":
        client_id, secret = _client_credentials(params)
        return service.client_credentials_grant(
            session=db.session, issuer=issuer, client_id=client_id, client_secret=secret,
            scope=scope,
        )  # fmt: skip
    raise service.OAuthError(
        "unsupported_grant_type", f"Grant type {grant_type!r} is not supported."
    )


@blp.post("/api/v1/auth/token")
@blp.doc(
    summary="Issue tokens (OAuth2 password, refresh_token and client_credentials grants)",
    requestBody={"required": True, "content": {FORM: {"schema": TokenRequestSchema}}},
    responses={
        "200": _json("Tokens", TokenResponseSchema),
        **OAUTH_ERRORS,
        "429": {"description": "Too many failed logins for this account from this address"},
    },
)  # fmt: skip
def token() -> Response:
    grant_type = request.form.get("grant_type", "") if request.mimetype == FORM else ""
    try:
        issued = _grant(_form())
    except service.OAuthError as error:
        TOKEN_ERRORS.labels(_known_grant(grant_type), error.error).inc()
        return oauth_error_response(error)
    except service.LoginThrottledError as error:
        raise ProblemError(
            429,
            slug="too-many-failed-logins",
            detail="Too many failed logins for this account from this address; try again later.",
            headers={"Retry-After": str(error.retry_after), **NO_STORE},
        ) from None
    except service.NoSigningKeyError:
        raise ProblemError(
            503, slug="no-signing-key", detail="The service has no token signing key configured."
        ) from None
    response = Response(json.dumps(issued.as_dict()), status=200, mimetype="application/json")
    response.headers.update(NO_STORE)
    return response


def _known_grant(grant_type: str) -> str:
    # Metric labels stay few: whatever else a client sends counts as "other".
    if grant_type in {"password", "refresh_token", "client_credentials"}:
        return grant_type
    return "other"


@blp.post("/api/v1/auth/revoke")
@blp.doc(
    summary="Revoke a refresh token and the tokens rotated from the same login (RFC 7009)",
    requestBody={"required": True, "content": {FORM: {"schema": RevokeRequestSchema}}},
    responses={"200": {"description": "Revoked, or the token was not known"}, **OAUTH_ERRORS},
)
def revoke() -> Response:
    try:
        params = _form()
        (token_value,) = _required(params, "token")
    except service.OAuthError as error:
        return oauth_error_response(error)
    service.revoke(session=db.session, token=token_value)
    response = Response(status=200)
    response.headers.update(NO_STORE)
    return response


@blp.get("/.well-known/jwks.json")
@blp.response(200, JwksSchema)
def jwks() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The public keys that verify access tokens (RFC 7517)."""
    max_age = settings().jwks_max_age_seconds
    return security.keys.jwks(), 200, {"Cache-Control": f"public, max-age={max_age}"}
