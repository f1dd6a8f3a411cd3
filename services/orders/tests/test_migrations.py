from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import shopstack_orders.catalog.models
import shopstack_orders.events.models
import shopstack_orders.idempotency.models
import shopstack_orders.orders.models  # noqa: F401 - registers the tables
from shopstack_common.settings import sqlalchemy_url
from shopstack_orders.models import SCHEMA, Base


def test_the_migrations_build_exactly_what_the_models_describe(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url, "psycopg"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": lambda name, type_, _parent: (
                        type_ != "schema" or name == SCHEMA
                    ),
                    "compare_type": True,
                    "version_table_schema": SCHEMA,
                },
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
