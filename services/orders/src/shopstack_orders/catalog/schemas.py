"""Catalog request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import MISSING, BaseModel, ConfigDict, Field

from shopstack_orders.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor
from shopstack_orders.schemas import QueryFlag, RequestBody, Text

MAX_STOCK = 1_000_000_000
MAX_PRICE = 100_000_000

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
Description = Annotated[Text, Field(max_length=5000)]
Price = Annotated[int, Field(ge=0, le=MAX_PRICE, description="Price in minor units (cents).")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]


class ProductCreate(RequestBody):
    sku: Sku
    name: Name
    description: Description = ""
    price: Price
    currency: Currency
    stock: int = Field(default=0, ge=0, le=MAX_STOCK)
    active: bool = True


class ProductUpdate(RequestBody):
    """Fields to change; absent fields stay as they are (none may be null). Stock changes only
    by restocking and by orders, so every unit stays accounted for."""

    sku: Sku | MISSING = MISSING
    name: Name | MISSING = MISSING
    description: Description | MISSING = MISSING
    price: Price | MISSING = MISSING
    currency: Currency | MISSING = MISSING
    active: bool | MISSING = MISSING


MAX_RESTOCK = 1_000_000


class Restock(RequestBody):
    quantity: int = Field(ge=1, le=MAX_RESTOCK, description="Units to add to the stock.")


class ProductPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    name: str
    description: str
    price: int
    currency: str
    stock: int
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductSort(StrEnum):
    NAME = "name"
    NAME_DESC = "-name"
    PRICE = "price"
    PRICE_DESC = "-price"


class ProductListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: Cursor | None = None
    q: Text | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Case-insensitive text to find in the SKU, name or description.",
    )
    active: QueryFlag | None = Field(
        default=None, description="Only active (or inactive) products."
    )
    sort: ProductSort = Field(
        default=ProductSort.NAME,
        description="name, -name, price or -price; ties are broken by id, so pages are stable.",
    )
