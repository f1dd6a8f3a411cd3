"""Catalog routes: public reads, admin writes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from shopstack_orders.catalog import service
from shopstack_orders.catalog.schemas import (
    ProductCreate,
    ProductListParams,
    ProductPublic,
    ProductUpdate,
    Restock,
)
from shopstack_orders.deps import ProductCacheDep, SessionDep, require_admin
from shopstack_orders.pagination import Page
from shopstack_orders.problems import problem_responses

router = APIRouter(prefix="/api/v1/products", tags=["products"])
admin_only = [Depends(require_admin)]


@router.get("", response_model=Page[ProductPublic], responses=problem_responses(422, 503))
async def list_products(
    params: Annotated[ProductListParams, Query()], session: SessionDep, cache: ProductCacheDep
) -> Page[ProductPublic]:
    return await service.list_products(session=session, cache=cache, params=params)


@router.get(
    "/{product_id}", response_model=ProductPublic, responses=problem_responses(404, 422, 503)
)
async def get_product(
    product_id: uuid.UUID, session: SessionDep, cache: ProductCacheDep
) -> ProductPublic:
    return await service.get_product(session=session, cache=cache, product_id=product_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductPublic,
    dependencies=admin_only,
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def create_product(
    product_in: ProductCreate, session: SessionDep, cache: ProductCacheDep, response: Response
) -> ProductPublic:
    product = await service.create_product(session=session, cache=cache, product_in=product_in)
    response.headers["Location"] = f"{router.prefix}/{product.id}"
    return product


@router.patch(
    "/{product_id}",
    response_model=ProductPublic,
    dependencies=admin_only,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def update_product(
    product_id: uuid.UUID, changes: ProductUpdate, session: SessionDep, cache: ProductCacheDep
) -> ProductPublic:
    return await service.update_product(
        session=session, cache=cache, product_id=product_id, changes=changes
    )


@router.post(
    "/{product_id}/restock",
    response_model=ProductPublic,
    dependencies=admin_only,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def restock_product(
    product_id: uuid.UUID, restock: Restock, session: SessionDep, cache: ProductCacheDep
) -> ProductPublic:
    return await service.restock(
        session=session, cache=cache, product_id=product_id, quantity=restock.quantity
    )
