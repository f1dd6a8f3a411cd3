"""orders, their lines and status changes; product list indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "orders"
STATUSES = "'pending', 'paid', 'shipped', 'delivered', 'cancelled'"


def upgrade() -> None:
    op.create_index("ix_products_name_id", "products", ["name", "id"], schema=SCHEMA)
    op.create_index("ix_products_price_id", "products", ["price", "id"], schema=SCHEMA)

    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_orders_status_known"),
        sa.CheckConstraint("total >= 0", name="ck_orders_total_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_orders_user_id_created_at_id",
        "orders",
        ["user_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_index("ix_orders_created_at_id", "orders", ["created_at", "id"], schema=SCHEMA)

    op.create_table(
        "order_items",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.SmallInteger(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("line_total", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_order_items_quantity_positive"),
        sa.CheckConstraint("unit_price >= 0", name="ck_order_items_unit_price_not_negative"),
        sa.CheckConstraint(
            "line_total = unit_price * quantity", name="ck_order_items_line_total_consistent"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            [f"{SCHEMA}.orders.id"],
            name="fk_order_items_order_id_orders",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], [f"{SCHEMA}.products.id"], name="fk_order_items_product_id_products"
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no", name="pk_order_items"),
        schema=SCHEMA,
    )
    op.create_index("ix_order_items_product_id", "order_items", ["product_id"], schema=SCHEMA)

    op.create_table(
        "order_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            [f"{SCHEMA}.orders.id"],
            name="fk_order_transitions_order_id_orders",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_transitions"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_order_transitions_order_id", "order_transitions", ["order_id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("order_transitions", schema=SCHEMA)
    op.drop_table("order_items", schema=SCHEMA)
    op.drop_table("orders", schema=SCHEMA)
    op.drop_index("ix_products_price_id", "products", schema=SCHEMA)
    op.drop_index("ix_products_name_id", "products", schema=SCHEMA)
