"""Dependencies, declared once as ``Annotated`` aliases.

They are ``async def`` although most await nothing: FastAPI runs plain ``def`` dependencies
in a worker thread, and a thread hop per dependency per request costs more than everything
these functions do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from shopstack_common.context import annotate_request
from shopstack_common.health import AsyncCheck
from shopstack_common.identity import Identity
from shopstack_common.problems import (
    AUTHENTICATION_REQUIRED,
    FORBIDDEN,
    UNSUPPORTED_MEDIA_TYPE,
    USER_REQUIRED,
    ProblemError,
)
from shopstack_orders.cache import ProductCache
from shopstack_orders.idempotency.service import IdempotencyPolicy
from shopstack_orders.resources import Resources


def resources_of(app: Starlette) -> Resources:
    """What the lifespan built: the app's one attribute."""
    resources: Resources = app.state.resources
    return resources


def readiness_checks(app: Starlette) -> Mapping[str, AsyncCheck]:
    return resources_of(app).readiness_checks()


async def get_resources(request: Request) -> Resources:
    return resources_of(request.app)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with resources.sessions() as session:
        yield session


async def get_product_cache(resources: ResourcesDep) -> ProductCache:
    return resources.product_cache


async def get_idempotency_policy(resources: ResourcesDep) -> IdempotencyPolicy:
    return resources.idempotency_policy


async def get_identity(request: Request) -> Identity | None:
    identity = Identity.from_headers(request.headers)
    if identity is not None:
        annotate_request(user_id=identity.subject)
    return identity


async def require_identity(identity: Annotated[Identity | None, Depends(get_identity)]) -> Identity:
    if identity is None:
        raise ProblemError(
            AUTHENTICATION_REQUIRED,
            "This endpoint needs an authenticated caller.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return identity


async def require_admin(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
    if not identity.is_admin:
        raise ProblemError(FORBIDDEN, "This endpoint is for administrators.")
    return identity


async def require_user(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
    """Orders belong to users: a service client without a user id cannot place one."""
    if identity.user_id is None:
        raise ProblemError(USER_REQUIRED, "Orders belong to users; this token carries no user.")
    return identity


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """Bodies are JSON: any other media type is refused as such (415), instead of reaching
    validation as bytes that are not an object."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise ProblemError(
            UNSUPPORTED_MEDIA_TYPE,
            f"This operation reads application/json, not {content_type.split(';', 1)[0]}.",
            errors=[
                {
                    "field": "Content-Type",
                    "location": "header",
                    "message": "must be application/json",
                }
            ],
        )


# The IETF draft sends the key as a structured-field string ("..."); a bare token is
# accepted too, since that is what most clients send.
IDEMPOTENCY_KEY_PATTERN = r'^(?:"[\x21\x23-\x7e]{1,255}"|[\x21\x23-\x7e]{1,255})$'


async def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            max_length=257,
            description="Makes the request safe to retry: a retry with the same key and "
            "payload replays the first response instead of acting twice "
            "(IETF httpapi idempotency-key draft). Without it a retry may act twice.",
        ),
    ] = None,
) -> str | None:
    if idempotency_key is None:
        return None
    return idempotency_key.strip('"')


# Permission checks sit in a route's dependencies=[...]; the identity, where the route needs it,
# comes from IdentityDep (the check and the value are one cached dependency).
ADMIN_ONLY = Depends(require_admin)
JSON_BODY = Depends(require_json_body)

SessionDep = Annotated[AsyncSession, Depends(get_session)]
ProductCacheDep = Annotated[ProductCache, Depends(get_product_cache)]
IdempotencyPolicyDep = Annotated[IdempotencyPolicy, Depends(get_idempotency_policy)]
IdentityDep = Annotated[Identity, Depends(require_identity)]
UserDep = Annotated[Identity, Depends(require_user)]
IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
