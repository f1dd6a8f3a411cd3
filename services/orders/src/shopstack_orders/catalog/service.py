"""Catalog operations."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstack_common.metrics import DEPENDENCY_FALLBACKS
from shopstack_orders.catalog.models import Product
from shopstack_orders.catalog.schemas import ProductCreate, ProductPublic

CACHE_PREFIX = "orders:product:"


class SkuTakenError(Exception):
    pass


async def create_product(*, session: AsyncSession, product_in: ProductCreate) -> Product:
    product = Product(**product_in.model_dump())
    session.add(product)
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise SkuTakenError(product_in.sku) from error
    await session.refresh(product)
    return product


async def get_product(
    *, session: AsyncSession, redis: Redis, product_id: uuid.UUID, ttl: int
) -> ProductPublic | None:
    """Cache-aside read; a Redis failure counts as a miss."""
    key = f"{CACHE_PREFIX}{product_id}"
    try:
        cached = await redis.get(key)
    except RedisError:
        DEPENDENCY_FALLBACKS.labels("redis", "products.get").inc()
        cached = None
    if cached:
        return ProductPublic.model_validate_json(cached)
    product = await session.scalar(select(Product).where(Product.id == product_id))
    if product is None:
        return None
    public = ProductPublic.model_validate(product)
    try:
        await redis.set(key, public.model_dump_json(), ex=ttl)
    except RedisError:
        DEPENDENCY_FALLBACKS.labels("redis", "products.set").inc()
    return public
