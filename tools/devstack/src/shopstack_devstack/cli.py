"""``shopstack-devstack up [--fresh]``: run the local platform until Ctrl-C (or ``down``)."""

from __future__ import annotations

import argparse
import sys

from shopstack_devstack.logview import LogView
from shopstack_devstack.settings import DevstackSettings
from shopstack_devstack.stack import Stack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shopstack-devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole platform on 127.0.0.1")
    up.add_argument("--fresh", action="store_true", help="delete stored data and start empty")
    commands.add_parser("down", help="stop a platform that `up` runs elsewhere (in the background)")
    args = parser.parse_args(argv)
    settings = DevstackSettings()
    view = LogView(raw=settings.log_format == "json")
    stack = Stack(settings, view)
    sys.exit(stack.up(fresh=args.fresh) if args.command == "up" else stack.down())
