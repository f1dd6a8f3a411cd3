"""Catalog routes: public reads, admin writes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from shopstack_orders.catalog import service
from shopstack_orders.catalog.schemas import (
    ProductCreate,
    ProductListParams,
    ProductPublic,
    ProductUpdate,
    Restock,
)
from shopstack_orders.deps import ADMIN_ONLY, JSON_BODY, ProductCacheDep, SessionDep
from shopstack_orders.openapi import link, location_header, next_page_link, operation_id
from shopstack_orders.pagination import Page

router = APIRouter(
    prefix="/api/v1/products", tags=["products"], generate_unique_id_function=operation_id
)

_PRODUCT_ID = {"product_id": "$response.body#/id"}
# Where a product (created, changed or restocked) leads: reading it, changing it, ordering it.
_PRODUCT_LINKS = {
    "GetProduct": link("get_product", "The product, as anyone reads it.", parameters=_PRODUCT_ID),
    "UpdateProduct": link("update_product", "Change its fields.", parameters=_PRODUCT_ID),
    "RestockProduct": link("restock_product", "Add to its stock.", parameters=_PRODUCT_ID),
    "OrderProduct": link(
        "place_order",
        "Order one unit of it.",
        request_body={"items": [{"product_id": "$response.body#/id", "quantity": 1}]},
    ),
}
_SKU_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "Another product has this SKU (`sku-taken`)."}
}


@router.get(
    "",
    summary="List products",
    response_model=Page[ProductPublic],
    responses={200: {"links": {"NextPage": next_page_link("list_products", ProductListParams)}}},
)
async def list_products(
    params: Annotated[ProductListParams, Query()], session: SessionDep, cache: ProductCacheDep
) -> Page[ProductPublic]:
    """A page of products, in a stable order; pass `next_cursor` back as `cursor` for the next
    one, with the same filters and sort."""
    return await service.list_products(session=session, cache=cache, params=params)


@router.get("/{product_id}", summary="Read a product", response_model=ProductPublic)
async def get_product(
    product_id: uuid.UUID, session: SessionDep, cache: ProductCacheDep
) -> ProductPublic:
    return await service.get_product(session=session, cache=cache, product_id=product_id)


@router.post(
    "",
    summary="Create a product (administrators)",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductPublic,
    dependencies=[ADMIN_ONLY, JSON_BODY],
    responses={
        201: {
            "headers": location_header("product"),
            "links": _PRODUCT_LINKS,
        },
        **_SKU_TAKEN,
    },
)
async def create_product(
    product_in: ProductCreate, session: SessionDep, cache: ProductCacheDep, response: Response
) -> ProductPublic:
    product = await service.create_product(session=session, cache=cache, product_in=product_in)
    response.headers["Location"] = f"{router.prefix}/{product.id}"
    return product


@router.patch(
    "/{product_id}",
    summary="Change a product (administrators)",
    response_model=ProductPublic,
    dependencies=[ADMIN_ONLY, JSON_BODY],
    responses={200: {"links": _PRODUCT_LINKS}, **_SKU_TAKEN},
)
async def update_product(
    product_id: uuid.UUID, changes: ProductUpdate, session: SessionDep, cache: ProductCacheDep
) -> ProductPublic:
    """Changes the fields given; absent fields stay as they are. Stock is not among them: it
    changes only by restocking and by orders."""
    return await service.update_product(
        session=session, cache=cache, product_id=product_id, changes=changes
    )


@router.post(
    "/{product_id}/restock",
    summary="Add to a product's stock (administrators)",
    response_model=ProductPublic,
    dependencies=[ADMIN_ONLY, JSON_BODY],
    responses={200: {"links": _PRODUCT_LINKS}},
)
async def restock_product(
    product_id: uuid.UUID, restock: Restock, session: SessionDep, cache: ProductCacheDep
) -> ProductPublic:
    """Adds `quantity` units. A stock that would pass 1,000,000,000 units is refused
    (`stock-limit`)."""
    return await service.restock(
        session=session, cache=cache, product_id=product_id, quantity=restock.quantity
    )
