"""``shopstack-users``: operational commands.

``migrate`` (then the admin bootstrap), ``serve``, ``generate-key``; the Flask CLI's
administrative commands (``create-admin``, ``create-client``, ``list-clients``,
``delete-client``) run under the same name.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import redis
from sqlalchemy import create_engine, pool
from sqlalchemy.orm import sessionmaker

from shopstack_common.logs import configure_logging
from shopstack_common.migrations import upgrade
from shopstack_common.settings import sqlalchemy_url
from shopstack_users.config import UsersSettings

MIGRATIONS = Path(__file__).parent / "migrations"
FLASK_COMMANDS = ("create-admin", "create-client", "list-clients", "delete-client")

logger = logging.getLogger("shopstack_users.cli")


class BootstrapError(RuntimeError):
    pass


def migrate(revision: str = "head") -> None:
    settings = UsersSettings()  # read from the environment
    configure_logging(settings.service_name, settings.log_level)
    upgrade(
        MIGRATIONS, sqlalchemy_url(settings.database_url, "psycopg"), settings.db_schema, revision
    )
    if revision == "head":
        bootstrap_admin(settings)
        bootstrap_console_client(settings)


def bootstrap_admin(settings: UsersSettings) -> None:
    """With SHOPSTACK_ADMIN_EMAIL and SHOPSTACK_ADMIN_PASSWORD set, make sure that account
    exists and is an active admin. Runs after every migration (the chart's hook Job, `make
    up`); an existing account keeps its password."""
    if settings.admin_email is None or settings.admin_password is None:
        return
    from shopstack_users.accounts import service as accounts
    from shopstack_users.passwords import Passwords, make_hasher, policy_violation

    password = settings.admin_password.get_secret_value()
    problem = policy_violation(password, email=settings.admin_email)
    if problem:
        raise BootstrapError(f"SHOPSTACK_ADMIN_PASSWORD {problem}")
    engine = create_engine(
        sqlalchemy_url(settings.database_url, "psycopg"), poolclass=pool.NullPool
    )
    try:
        user, created = accounts.ensure_admin(
            sessions=sessionmaker(engine, expire_on_commit=False),
            passwords=Passwords(make_hasher(settings)),
            email=settings.admin_email,
            password=password,
        )
    finally:
        engine.dispose()
    # The cached copy may predate the promotion; Redis being away is no reason to fail.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
    with contextlib.suppress(redis.RedisError), client:
        client.delete(f"{accounts.CACHE_PREFIX}{user.id}")
    logger.info(
        "admin %s %s",
        user.email,
        "created" if created else "present",
        extra={"user_id": str(user.id)},
    )


def bootstrap_console_client(settings: UsersSettings) -> None:
    """With CONSOLE_CLIENT_SECRET set, make sure the console's own service client exists
    with that secret and the scope it reads orders with (idempotent, like the admin)."""
    if settings.console_client_secret is None:
        return
    from shopstack_users.console.orders_api import SCOPE
    from shopstack_users.passwords import Passwords, make_hasher
    from shopstack_users.tokens import service as tokens

    engine = create_engine(
        sqlalchemy_url(settings.database_url, "psycopg"), poolclass=pool.NullPool
    )
    try:
        changed = tokens.ensure_client(
            sessions=sessionmaker(engine, expire_on_commit=False),
            passwords=Passwords(make_hasher(settings)),
            client_id=settings.console_client_id,
            secret=settings.console_client_secret.get_secret_value(),
            scopes=[SCOPE],
        )
    finally:
        engine.dispose()
    logger.info(
        "console client %s %s", settings.console_client_id, "set up" if changed else "present"
    )


def generate_key(directory: Path, kid: str | None, *, if_missing: bool) -> None:
    """Write a new Ed25519 signing key as <directory>/<kid>.pem (kid: today's date)."""
    from shopstack_users.keys import write_new_key

    if if_missing and any(directory.glob("*.pem")):
        print(f"{directory} already holds a key; nothing to do")
        return
    kid = kid or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    path = write_new_key(directory, kid)
    print(f"wrote {path} (kid {kid})")


def run_flask_command(argv: list[str]) -> None:
    from flask.cli import FlaskGroup

    from shopstack_users.main import create_app
    from shopstack_users.resources import resources

    app = create_app()
    try:
        FlaskGroup(create_app=lambda: app).main(args=argv, prog_name="shopstack-users")
    finally:
        resources(app).close()


def serve() -> None:
    """Replace this process with gunicorn (gthread workers) running the app; gunicorn's
    config reads every option from the settings."""
    UsersSettings()  # a wrong environment fails here, in one message, before gunicorn starts
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:shopstack_users.gunicorn_conf",
        "shopstack_users.wsgi:app",
    ]
    os.execve(sys.executable, argv, serving_environment(os.environ))  # noqa: S606 - replace ourselves with the production server


# Every argon2id hash takes argon2_memory_cost_kib (19 MiB) from malloc. glibc serves the
# first such block with mmap and gives it back, but then raises its mmap threshold above it,
# so later ones come from the heap of the worker thread's own arena and stay there once
# freed: each gthread thread that ever hashed held 19 MiB more, a worker 148 MiB RSS after a
# few sign-ins instead of 110. A fixed threshold (below argon2's 8 MiB minimum) keeps every
# such block an mmap returned on free. glibc reads it at start-up; other C libraries ignore it.
MALLOC_MMAP_THRESHOLD = str(1024 * 1024)


def serving_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """gunicorn's environment: ours, with the malloc setting above unless one is set."""
    return {"MALLOC_MMAP_THRESHOLD_": MALLOC_MMAP_THRESHOLD, **environ}


def main(argv: list[str] | None = None) -> None:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list and args_list[0] in FLASK_COMMANDS:
        run_flask_command(args_list)
        return
    parser = argparse.ArgumentParser(
        prog="shopstack-users",
        epilog=f"Administrative commands (see --help of each): {', '.join(FLASK_COMMANDS)}",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    migrate_cmd = commands.add_parser("migrate", help="upgrade the users schema")
    migrate_cmd.add_argument("revision", nargs="?", default="head")
    key_cmd = commands.add_parser("generate-key", help="write a new Ed25519 signing key")
    key_cmd.add_argument("directory", type=Path, help="the JWT_SIGNING_KEYS_DIR to write to")
    key_cmd.add_argument("--kid", help="the key id (default: today's date, YYYY-MM-DD)")
    key_cmd.add_argument(
        "--if-missing", action="store_true", help="do nothing when a key is already there"
    )
    commands.add_parser("serve", help="run the service under gunicorn (options: environment)")
    args = parser.parse_args(args_list)
    if args.command == "migrate":
        try:
            migrate(args.revision)
        except BootstrapError as error:
            parser.exit(2, f"shopstack-users migrate: {error}\n")
    elif args.command == "generate-key":
        generate_key(args.directory, args.kid, if_missing=args.if_missing)
    else:
        serve()
