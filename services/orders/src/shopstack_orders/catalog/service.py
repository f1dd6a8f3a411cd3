"""Catalog operations. Reads go through the product cache; writes invalidate it once they
have committed. Stock changes only through ``catalog.stock``."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstack_common.problems import NOT_FOUND, SKU_TAKEN, ProblemError
from shopstack_orders.cache import ProductCache
from shopstack_orders.catalog import stock
from shopstack_orders.catalog.models import Product
from shopstack_orders.catalog.schemas import (
    ProductCreate,
    ProductListParams,
    ProductPublic,
    ProductSort,
    ProductUpdate,
)
from shopstack_orders.pagination import Page, decode_cursor, encode_cursor

_NAME_KEY: TypeAdapter[tuple[str, uuid.UUID]] = TypeAdapter(tuple[str, uuid.UUID])
_PRICE_KEY: TypeAdapter[tuple[int, uuid.UUID]] = TypeAdapter(tuple[int, uuid.UUID])
_PAGE: TypeAdapter[Page[ProductPublic]] = TypeAdapter(Page[ProductPublic])
_ABSENT = "null"


def product_not_found(product_id: uuid.UUID) -> ProblemError:
    return ProblemError(NOT_FOUND, f"No product {product_id}.")


def _sku_taken(sku: str) -> ProblemError:
    return ProblemError(
        SKU_TAKEN,
        f"A product with SKU {sku!r} already exists.",
        errors=[{"field": "sku", "location": "body", "message": "already exists"}],
    )


# -- writes ---------------------------------------------------------------------------------


async def create_product(
    *, session: AsyncSession, cache: ProductCache, product_in: ProductCreate
) -> ProductPublic:
    product = Product(**product_in.model_dump())
    try:
        async with session.begin():
            session.add(product)
    except IntegrityError:
        raise _sku_taken(product_in.sku) from None
    # A new product can appear on any list page.
    await cache.invalidate([product.id])
    return ProductPublic.model_validate(product)


async def update_product(
    *,
    session: AsyncSession,
    cache: ProductCache,
    product_id: uuid.UUID,
    changes: ProductUpdate,
) -> ProductPublic:
    values = changes.model_dump()
    try:
        async with session.begin():
            if values:
                product = await session.scalar(
                    update(Product)
                    .where(Product.id == product_id)
                    .values(**values)
                    .returning(Product)
                )
            else:
                product = await session.get(Product, product_id)
    except IntegrityError:
        raise _sku_taken(str(values.get("sku"))) from None
    if product is None:
        raise product_not_found(product_id)
    if values:
        await cache.invalidate([product_id])
    return ProductPublic.model_validate(product)


async def restock(
    *, session: AsyncSession, cache: ProductCache, product_id: uuid.UUID, quantity: int
) -> ProductPublic:
    async with session.begin():
        product = await stock.restock(session=session, product_id=product_id, quantity=quantity)
    if product is None:
        raise product_not_found(product_id)
    await cache.invalidate([product_id])
    return ProductPublic.model_validate(product)


# -- reads ----------------------------------------------------------------------------------


async def get_product(
    *, session: AsyncSession, cache: ProductCache, product_id: uuid.UUID
) -> ProductPublic:
    async def load() -> str:
        async with session.begin():
            product = await session.get(Product, product_id)
        if product is None:
            # Cached too, so a burst of requests for a missing id is one database read.
            return _ABSENT
        return ProductPublic.model_validate(product).model_dump_json()

    cached = await cache.item(product_id, load)
    if cached == _ABSENT:
        raise product_not_found(product_id)
    return ProductPublic.model_validate_json(cached)


_SORT_COLUMNS: dict[ProductSort, tuple[str, bool]] = {
    ProductSort.NAME: ("name", False),
    ProductSort.NAME_DESC: ("name", True),
    ProductSort.PRICE: ("price", False),
    ProductSort.PRICE_DESC: ("price", True),
}


async def list_products(
    *, session: AsyncSession, cache: ProductCache, params: ProductListParams
) -> Page[ProductPublic]:
    query_scope = ("products", params.sort.value, params.q, params.active)
    column_name, _ = _SORT_COLUMNS[params.sort]
    after: tuple[Any, uuid.UUID] | None = None
    if params.cursor is not None:
        # Checked before the cache: a bad cursor is the caller's error, never a cache entry.
        key_type: TypeAdapter[tuple[Any, uuid.UUID]] = (
            _NAME_KEY if column_name == "name" else _PRICE_KEY
        )
        after = decode_cursor(params.cursor, query=query_scope, key_type=key_type)

    async def load() -> str:
        async with session.begin():
            page = await _load_page(session=session, params=params, after=after)
        return page.model_dump_json()

    digest = hashlib.sha256(params.model_dump_json().encode()).hexdigest()[:32]
    return _PAGE.validate_json(await cache.page(digest, load))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page_statement(
    params: ProductListParams, after: tuple[Any, uuid.UUID] | None
) -> Select[Product]:
    """The query of one page of products. Keyset all the way: ``after`` bounds a range of
    ``ix_products_name_id`` or ``ix_products_price_id``, so a deep page costs what the first
    does (a ``q`` search filters that range; it has no index of its own)."""
    column_name, descending = _SORT_COLUMNS[params.sort]
    column = Product.name if column_name == "name" else Product.price
    statement: Select[Product] = select(Product)
    if params.q is not None:
        pattern = f"%{_escape_like(params.q)}%"
        statement = statement.where(
            or_(
                Product.sku.ilike(pattern, escape="\\"),
                Product.name.ilike(pattern, escape="\\"),
                Product.description.ilike(pattern, escape="\\"),
            )
        )
    if params.active is not None:
        statement = statement.where(Product.active.is_(params.active))
    if after is not None:
        position = tuple_(column, Product.id)
        boundary: ColumnElement[bool] = (
            position < tuple_(*after) if descending else position > tuple_(*after)
        )
        statement = statement.where(boundary)
    if descending:
        statement = statement.order_by(column.desc(), Product.id.desc())
    else:
        statement = statement.order_by(column.asc(), Product.id.asc())
    return statement.limit(params.limit + 1)


async def _load_page(
    *, session: AsyncSession, params: ProductListParams, after: tuple[Any, uuid.UUID] | None
) -> Page[ProductPublic]:
    query_scope = ("products", params.sort.value, params.q, params.active)
    column_name, _ = _SORT_COLUMNS[params.sort]
    rows = list((await session.scalars(page_statement(params, after))).all())
    items = [ProductPublic.model_validate(row) for row in rows[: params.limit]]
    next_cursor = None
    if len(rows) > params.limit:
        last = items[-1]
        key = (last.name if column_name == "name" else last.price, last.id)
        next_cursor = encode_cursor(query=query_scope, key=key)
    return Page[ProductPublic](items=items, next_cursor=next_cursor)
