"""Dependencies, declared once as ``Annotated`` aliases.

They are ``async def`` although none awaits anything: FastAPI runs plain ``def``
dependencies in a worker thread, and a thread hop per dependency per request costs more
than everything these functions do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from shopstack_common.context import annotate_request
from shopstack_common.fastapi_support import ProblemError
from shopstack_common.identity import Identity
from shopstack_orders.cache import ProductCache
from shopstack_orders.config import OrdersSettings
from shopstack_orders.db import get_session
from shopstack_orders.idempotency.service import IdempotencyPolicy


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_settings(request: Request) -> OrdersSettings:
    settings: OrdersSettings = request.app.state.settings
    return settings


async def get_product_cache(request: Request) -> ProductCache:
    cache: ProductCache = request.app.state.product_cache
    return cache


async def get_idempotency_policy(request: Request) -> IdempotencyPolicy:
    policy: IdempotencyPolicy = request.app.state.idempotency_policy
    return policy


async def get_identity(request: Request) -> Identity | None:
    identity = Identity.from_headers(request.headers)
    if identity is not None:
        annotate_request(user_id=identity.subject)
    return identity


async def require_identity(identity: Annotated[Identity | None, Depends(get_identity)]) -> Identity:
    if identity is None:
        raise ProblemError(
            401,
            slug="unauthenticated",
            title="Authentication required",
            detail="This endpoint needs an authenticated caller.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return identity


async def require_admin(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
    if not identity.is_admin:
        raise ProblemError(
            403,
            slug="forbidden",
            title="Forbidden",
            detail="This endpoint is for administrators.",
        )
    return identity


async def require_user(identity: Annotated[Identity, Depends(require_identity)]) -> Identity:
    """Orders belong to users: a service client without a user id cannot place one."""
    if identity.user_id is None:
        raise ProblemError(
            403,
            slug="user-required",
            title="Forbidden",
            detail="Orders belong to users; this token carries no user.",
        )
    return identity


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


SessionDep = Annotated[AsyncSession, Depends(get_session)]
RedisDep = Annotated[Redis, Depends(get_redis)]
SettingsDep = Annotated[OrdersSettings, Depends(get_settings)]
ProductCacheDep = Annotated[ProductCache, Depends(get_product_cache)]
IdempotencyPolicyDep = Annotated[IdempotencyPolicy, Depends(get_idempotency_policy)]
IdentityDep = Annotated[Identity, Depends(require_identity)]
UserDep = Annotated[Identity, Depends(require_user)]
AdminDep = Annotated[Identity, Depends(require_admin)]
IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
