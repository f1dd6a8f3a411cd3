"""The declarative base: every table lives in the service's own PostgreSQL schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shopstack_common.migrations import service_metadata

SCHEMA = "users"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)
