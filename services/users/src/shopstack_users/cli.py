"""``shopstack-users``: operational commands (``migrate``, ``serve``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shopstack_common.migrations import upgrade
from shopstack_common.settings import sqlalchemy_url
from shopstack_users.config import UsersSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(revision: str = "head") -> None:
    settings = UsersSettings()  # read from the environment
    upgrade(
        MIGRATIONS, sqlalchemy_url(settings.database_url, "psycopg"), settings.db_schema, revision
    )


def serve(bind: str, workers: int, threads: int) -> None:
    """Replace this process with gunicorn (gthread workers) running the app."""
    argv = [
        sys.executable, "-m", "gunicorn",
        "--config", "python:shopstack_users.gunicorn_conf",
        "--bind", bind,
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread",
        "shopstack_users.wsgi:app",
    ]  # fmt: skip
    os.execv(sys.executable, argv)  # noqa: S606 - replace ourselves with the production server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shopstack-users")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate_cmd = commands.add_parser("migrate", help="upgrade the users schema")
    migrate_cmd.add_argument("revision", nargs="?", default="head")
    serve_cmd = commands.add_parser("serve", help="run the service under gunicorn")
    serve_cmd.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8001"))
    serve_cmd.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2"))
    )
    serve_cmd.add_argument(
        "--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4"))
    )
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate(args.revision)
    else:
        serve(args.bind, args.workers, args.threads)
