"""roles on users, service clients, refresh tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "users"


def upgrade() -> None:
    # Existing users become customers through the server default.
    op.add_column(
        "users",
        sa.Column(
            "roles",
            sa.ARRAY(sa.String(32)),
            server_default=sa.text("'{customer}'::varchar[]"),
            nullable=False,
        ),
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "ck_users_known_roles",
        "users",
        "cardinality(roles) > 0 AND roles <@ ARRAY['customer', 'admin']::varchar[]",
        schema=SCHEMA,
    )
    op.create_index("ix_users_created_at_id", "users", ["created_at", "id"], schema=SCHEMA)
    op.create_index(
        "ix_users_email_pattern",
        "users",
        ["email"],
        schema=SCHEMA,
        postgresql_ops={"email": "varchar_pattern_ops"},
    )

    op.create_table(
        "service_clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), server_default="", nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.String(64)), server_default="{}", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("client_id", name="pk_service_clients"),
        schema=SCHEMA,
    )

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(1000), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            [f"{SCHEMA}.users.id"],
            name="fk_refresh_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"], schema=SCHEMA)
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("refresh_tokens", schema=SCHEMA)
    op.drop_table("service_clients", schema=SCHEMA)
    op.drop_index("ix_users_email_pattern", table_name="users", schema=SCHEMA)
    op.drop_index("ix_users_created_at_id", table_name="users", schema=SCHEMA)
    op.drop_constraint("ck_users_known_roles", "users", schema=SCHEMA)
    op.drop_column("users", "roles", schema=SCHEMA)
