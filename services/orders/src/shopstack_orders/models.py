"""The declarative base: every table lives in the service's own PostgreSQL schema, ``orders``.

The name is fixed, not a setting: the migrations create their tables in it, and one database
holds every service's schema side by side.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shopstack_common.migrations import service_metadata

SCHEMA = "orders"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)
