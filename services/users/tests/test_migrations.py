from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import shopstack_users.accounts.models
import shopstack_users.audit.models
import shopstack_users.console.models
import shopstack_users.tokens.models  # noqa: F401 - their tables join the metadata
from shopstack_common.settings import sqlalchemy_url
from shopstack_users.models import SCHEMA, Base


def test_the_migrations_build_what_the_models_describe(database_url: str) -> None:
    def only_ours(name: str | None, type_: str, _parent: Any) -> bool:
        return type_ != "schema" or name == SCHEMA

    engine = create_engine(sqlalchemy_url(database_url, "psycopg"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": only_ours,
                    "version_table_schema": SCHEMA,
                    "compare_type": True,
                },
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
