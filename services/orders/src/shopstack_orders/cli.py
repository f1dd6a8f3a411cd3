"""``shopstack-orders``: operational commands (``migrate``, ``serve``,
``purge-idempotency-keys``)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from shopstack_common.logs import configure_logging
from shopstack_common.migrations import upgrade
from shopstack_common.serving import serve_asgi
from shopstack_common.settings import sqlalchemy_url
from shopstack_orders.config import OrdersSettings
from shopstack_orders.models import SCHEMA

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(revision: str = "head") -> None:
    settings = OrdersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    upgrade(MIGRATIONS, sqlalchemy_url(settings.database_url, "asyncpg"), SCHEMA, revision)


async def purge_idempotency_keys() -> int:
    """Delete Idempotency-Key records past their retention; returns how many went."""
    # Imported here: these modules define metrics, and `serve` must not create any in the
    # parent process before it prepares the multiprocess metrics directory.
    from shopstack_orders import db
    from shopstack_orders.idempotency.service import purge_expired

    settings = OrdersSettings()  # read from the environment
    engine = db.create_engine(settings)
    try:
        async with db.create_session_factory(engine)() as session:
            return await purge_expired(
                session=session, batch_size=settings.idempotency_purge_batch_size
            )
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shopstack-orders")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate_cmd = commands.add_parser("migrate", help="upgrade the orders schema")
    migrate_cmd.add_argument("revision", nargs="?", default="head")
    commands.add_parser("serve", help="run the service under uvicorn (options: environment)")
    commands.add_parser(
        "purge-idempotency-keys",
        help="delete Idempotency-Key records older than their retention (for a cron job)",
    )
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate(args.revision)
    elif args.command == "purge-idempotency-keys":
        print(f"purged {asyncio.run(purge_idempotency_keys())} expired idempotency keys")
    else:
        serve_asgi("shopstack_orders.asgi:app", OrdersSettings())
