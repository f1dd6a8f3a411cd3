"""Shapes of the overview answer. Upstream parts are validated on the way through, so a
changed upstream shows up as a missing part, not as a malformed answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Part = Literal["profile", "orders"]


class ProfilePublic(BaseModel):
    """users' ``GET /api/v1/users/me``."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    email: str
    full_name: str
    roles: list[str]
    created_at: datetime
    updated_at: datetime


class OrdersOverview(BaseModel):
    latest: list[dict[str, Any]] = Field(description="The five newest orders, newest first.")
    counts_by_status: dict[str, int]
    total: int


class MissingPart(BaseModel):
    part: Part
    status: int | None = Field(
        description="What the upstream answered, or null when it did not answer at all."
    )
    detail: str


class OverviewPublic(BaseModel):
    profile: ProfilePublic | None
    orders: OrdersOverview | None
    missing: list[MissingPart] = Field(
        description="The parts that could not be fetched; empty when the answer is complete."
    )
