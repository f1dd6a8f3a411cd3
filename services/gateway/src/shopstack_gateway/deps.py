"""Dependencies of the gateway's own routes, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from shopstack_common.identity import Identity
from shopstack_common.problems import USER_REQUIRED, ProblemError
from shopstack_gateway.middleware.authentication import authentication_required, scope_identity
from shopstack_gateway.openapi import SECURITY_SCHEME
from shopstack_gateway.resources import Resources, resources_of

# Only so that the OpenAPI operations of the routes that need a token say so; authentication
# verified the token already, and the merged document names the real token URL.
_token_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token", scheme_name=SECURITY_SCHEME, auto_error=False
)


def get_resources(request: Request) -> Resources:
    return resources_of(request.app)


def require_identity(
    request: Request, _token: Annotated[str | None, Depends(_token_scheme)]
) -> Identity:
    """The caller authentication verified; it already refused bad tokens, so none means none."""
    identity = scope_identity(request.scope)
    if identity is None:
        raise authentication_required()
    return identity


def require_user(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
    if identity.user_id is None:
        raise ProblemError(
            USER_REQUIRED, "This route is about a user; a service client's token has none."
        )
    return identity


ResourcesDep = Annotated[Resources, Depends(get_resources)]
IdentityDep = Annotated[Identity, Depends(require_identity)]
UserDep = Annotated[Identity, Depends(require_user)]
