"""Catalog routes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from shopstack_common.fastapi_support import ProblemError
from shopstack_orders.catalog import service
from shopstack_orders.catalog.schemas import ProductCreate, ProductPublic
from shopstack_orders.deps import RedisDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/products", tags=["products"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProductPublic)
async def create_product(product_in: ProductCreate, session: SessionDep) -> ProductPublic:
    try:
        product = await service.create_product(session=session, product_in=product_in)
    except service.SkuTakenError:
        raise ProblemError(
            409,
            slug="sku-taken",
            title="SKU already exists",
            detail=f"A product with SKU {product_in.sku!r} already exists.",
            errors=[{"field": "sku", "location": "body", "message": "already exists"}],
        ) from None
    return ProductPublic.model_validate(product)


@router.get("/{product_id}", response_model=ProductPublic)
async def get_product(
    product_id: uuid.UUID, session: SessionDep, redis: RedisDep, settings: SettingsDep
) -> ProductPublic:
    product = await service.get_product(
        session=session, redis=redis, product_id=product_id, ttl=settings.product_cache_ttl_seconds
    )
    if product is None:
        raise ProblemError(404, detail="No such product.")
    return product
