"""Alembic plumbing shared by each service's own migration history.

Every service keeps its tables, and its ``alembic_version`` table, in its own PostgreSQL
schema. Migrations take a PostgreSQL advisory lock, so replicas or jobs that start at once
run them one after another instead of racing.
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, MetaData, create_engine, pool, text

# Alembic (with Mako and Pygments behind it, about 9 MiB) loads only where migrations run:
# every serving process imports this module for ``service_metadata`` and never migrates.
if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext

# Constraint names are set by rule, so migrations written by hand and by autogenerate agree
# and a constraint can be dropped by a name known in advance.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """The MetaData of a service's declarative base: its own schema, the shared naming rule."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def alembic_config(script_location: Path, url: str, schema: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["url"] = url
    config.attributes["schema"] = schema
    return config


def upgrade(script_location: Path, url: str, schema: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(script_location, url, schema), revision)


def _run(
    context: EnvironmentContext, connection: Connection, metadata: MetaData, schema: str
) -> None:
    lock_key = zlib.crc32(f"shopstack-migrations:{schema}".encode())
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key})
    try:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key})
        connection.commit()


def run_env(metadata: MetaData) -> None:
    """The body of a service's ``env.py``: online migrations only (no SQL scripts)."""
    from alembic import context as alembic_context

    # alembic.context stands for the EnvironmentContext of the command being run.
    context: EnvironmentContext = alembic_context  # type: ignore[assignment]
    config = context.config
    url: str = config.attributes["url"]
    schema: str = config.attributes["schema"]
    if "+asyncpg" in url:
        asyncio.run(_run_async(context, url, metadata, schema))
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(context, connection, metadata, schema)
    engine.dispose()


async def _run_async(
    context: EnvironmentContext, url: str, metadata: MetaData, schema: str
) -> None:
    # Only orders migrates through asyncpg; the import needs greenlet, which users lacks.
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: _run(context, sync, metadata, schema))
    await engine.dispose()
