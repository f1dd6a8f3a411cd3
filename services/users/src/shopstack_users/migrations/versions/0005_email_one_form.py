"""every stored email in its one form (IDN domains in Unicode)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Addresses registered before were only trimmed and lower-cased, so a domain typed as its
punycode A-label (``xn--bcher-kva.example``) was stored so, and sign-in, which now looks the
address up in its one form, would no longer find it. Each such row is rewritten. Where two
rows are one account in two spellings, neither is touched: which of them is the person's
is for an operator to decide, so the migration logs their ids instead of merging anything.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shopstack_users.fields import normalise_email

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "users"
logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    users = sa.table("users", sa.column("id"), sa.column("email"), schema=SCHEMA)
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.email)).all()
    taken = {email for _, email in rows}
    by_form: dict[str, list[str]] = {}
    for user_id, email in rows:
        by_form.setdefault(normalise_email(email), []).append(str(user_id))
    for user_id, email in rows:
        form = normalise_email(email)
        if form == email:
            continue
        if form in taken or len(by_form[form]) > 1:
            logger.warning(
                "users %s are one address in several spellings; left as they are",
                ", ".join(sorted(by_form[form])),
            )
            continue
        connection.execute(sa.update(users).where(users.c.id == user_id).values(email=form))
        taken.add(form)


def downgrade() -> None:
    # The earlier spelling is not kept; the one form is a valid address for the old code too.
    pass
