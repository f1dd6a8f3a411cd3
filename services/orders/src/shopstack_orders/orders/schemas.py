"""Order request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopstack_orders.orders.lifecycle import OrderStatus
from shopstack_orders.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor
from shopstack_orders.schemas import Instant, JsonUuid, QueryFlag, RequestBody, Text

# Part of the API contract (published as maxItems / maximum in the OpenAPI document), so
# constants rather than settings: a client can rely on them.
MAX_LINES = 50
MAX_QUANTITY = 1000


class OrderLineCreate(RequestBody):
    product_id: JsonUuid
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class OrderCreate(RequestBody):
    """What a customer asks for. Prices come from the catalog, never from the client."""

    items: list[OrderLineCreate] = Field(min_length=1, max_length=MAX_LINES)
    note: Text | None = Field(default=None, max_length=500)

    @field_validator("items")
    @classmethod
    def _one_line_per_product(cls, items: list[OrderLineCreate]) -> list[OrderLineCreate]:
        seen: set[uuid.UUID] = set()
        for line in items:
            if line.product_id in seen:
                raise ValueError(
                    f"product {line.product_id} appears on more than one line; "
                    "put the whole quantity on one"
                )
            seen.add(line.product_id)
        return items


class OrderItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: uuid.UUID
    sku: str
    quantity: int
    unit_price: int
    line_total: int


class TransitionPublic(BaseModel):
    """One status change; ``from`` is null for the order's creation."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True, serialize_by_alias=True)

    from_status: OrderStatus | None = Field(alias="from")
    to_status: OrderStatus = Field(alias="to")
    actor: str
    at: datetime


class OrderPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    items: list[OrderItemPublic]
    total: int
    currency: str
    note: str | None
    transitions: list[TransitionPublic]
    created_at: datetime
    updated_at: datetime


class TransitionCreate(RequestBody):
    # A status arrives as its string, which is parsed into the enum.
    to: Annotated[OrderStatus, Field(strict=False)]


class OrderListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: Cursor | None = None
    status: OrderStatus | None = None
    created_after: Instant | None = Field(
        default=None, description="Only orders created at or after this instant."
    )
    created_before: Instant | None = Field(
        default=None, description="Only orders created before this instant."
    )
    user_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "Administrators and service clients with the orders:read scope: this user's "
            "orders instead of the caller's own."
        ),
    )
    all_users: QueryFlag = Field(
        default=False,
        description=(
            "Administrators and service clients with the orders:read scope: every user's "
            "orders instead of the caller's own."
        ),
    )


class OrderSummary(BaseModel):
    counts_by_status: dict[OrderStatus, int]
    total: int
