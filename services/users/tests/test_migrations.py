from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

import shopstack_users.accounts.models
import shopstack_users.audit.models
import shopstack_users.console.models
import shopstack_users.tokens.models  # noqa: F401 - their tables join the metadata
from shopstack_common.migrations import upgrade
from shopstack_common.settings import sqlalchemy_url
from shopstack_users.cli import MIGRATIONS
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


def test_stored_emails_are_rewritten_to_their_one_form(empty_database: str) -> None:
    """Rows from before 0005 that spell an IDN domain as punycode become the Unicode form
    sign-in looks up; two rows that are one address in two spellings are both left alone."""
    url = sqlalchemy_url(empty_database, "psycopg")
    upgrade(MIGRATIONS, url, SCHEMA, "0004")
    rows = {
        "00000000-0000-4000-8000-000000000001": "ada@xn--bcher-kva.example",
        "00000000-0000-4000-8000-000000000002": "bob@example.com",
        "00000000-0000-4000-8000-000000000003": "eve@xn--mnchen-3ya.example",
        "00000000-0000-4000-8000-000000000004": "eve@münchen.example",
    }
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for user_id, email in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO users.users (id, email, full_name, password_hash) "
                        "VALUES (:id, :email, 'x', 'x')"
                    ),
                    {"id": user_id, "email": email},
                )
        upgrade(MIGRATIONS, url, SCHEMA, "0005")
        with engine.connect() as connection:
            query = text("SELECT id::text, email FROM users.users")
            stored = {row[0]: row[1] for row in connection.execute(query)}
    finally:
        engine.dispose()
    assert stored == rows | {"00000000-0000-4000-8000-000000000001": "ada@bücher.example"}
