"""``shopstack-gateway serve``: run the gateway under uvicorn."""

from __future__ import annotations

import argparse
import os

from shopstack_common.serving import serve_asgi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shopstack-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the gateway under uvicorn")
    serve_cmd.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve_cmd.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve_cmd.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1"))
    )
    args = parser.parse_args(argv)
    serve_asgi("shopstack_gateway.asgi:app", host=args.host, port=args.port, workers=args.workers)
