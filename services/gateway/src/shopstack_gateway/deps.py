"""Dependencies of the gateway's own routes, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shopstack_common.fastapi_support import ProblemError
from shopstack_common.identity import Identity
from shopstack_gateway.edge import scope_identity, www_authenticate
from shopstack_gateway.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def require_identity(request: Request) -> Identity:
    """The caller the edge verified; the edge already refused bad tokens, so none means none."""
    identity = scope_identity(request.scope)
    if identity is None:
        raise ProblemError(
            401,
            slug="authentication-required",
            title="Authentication required",
            detail="This route needs a bearer access token.",
            headers={"WWW-Authenticate": www_authenticate()},
        )
    return identity


def require_user(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
    if identity.user_id is None:
        raise ProblemError(
            403,
            slug="user-token-required",
            title="User token required",
            detail="This route is about a user; a service client's token has none.",
        )
    return identity


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
IdentityDep = Annotated[Identity, Depends(require_identity)]
UserDep = Annotated[Identity, Depends(require_user)]
