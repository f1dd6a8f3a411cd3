"""``shopstack-orders``: operational commands (``migrate``, ``serve``, ``relay``,
``purge-idempotency-keys``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from shopstack_common.logs import configure_logging
from shopstack_common.migrations import upgrade
from shopstack_common.serving import serve_asgi, start_metrics_server
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
    from shopstack_orders.idempotency.retention import purge_expired

    settings = OrdersSettings()  # read from the environment
    engine = db.create_engine(settings)
    try:
        async with db.create_session_factory(engine)() as session:
            return await purge_expired(
                session=session, batch_size=settings.idempotency_purge_batch_size
            )
    finally:
        await engine.dispose()


async def run_relay(settings: OrdersSettings) -> None:
    """Publish the outbox to the stream until SIGTERM or SIGINT; the batch in hand is
    finished (or rolled back) and the lease given up before the process ends."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from shopstack_orders import db
    from shopstack_orders.events.relay import Relay

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    engine = db.create_engine(settings)
    # Not the request path's short timeout: an XADD batch that times out after Redis applied
    # it is published again, so the relay waits longer, and retries only in its own loop
    # (a client-side retry of the MULTI would add the batch twice).
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.relay_redis_timeout_seconds,
        socket_connect_timeout=settings.relay_redis_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        await Relay(settings=settings, engine=engine, redis=redis).run(stop)
    finally:
        await redis.aclose()
        await engine.dispose()


def relay() -> None:
    settings = OrdersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    # The relay serves no HTTP but /metrics: on METRICS_PORT when set, else on PORT.
    start_metrics_server(
        settings.model_copy(update={"metrics_port": settings.metrics_port or settings.port})
    )
    asyncio.run(run_relay(settings))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shopstack-orders")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate_cmd = commands.add_parser("migrate", help="upgrade the orders schema")
    migrate_cmd.add_argument("revision", nargs="?", default="head")
    commands.add_parser("serve", help="run the service under uvicorn (options: environment)")
    commands.add_parser(
        "relay", help="publish the outbox to the Redis stream (one leader; options: environment)"
    )
    commands.add_parser(
        "purge-idempotency-keys",
        help="delete Idempotency-Key records older than their retention (for a cron job)",
    )
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate(args.revision)
    elif args.command == "relay":
        relay()
    elif args.command == "purge-idempotency-keys":
        print(f"purged {asyncio.run(purge_idempotency_keys())} expired idempotency keys")
    else:
        serve_asgi("shopstack_orders.asgi:app", OrdersSettings())
