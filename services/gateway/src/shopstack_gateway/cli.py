"""``shopstack-gateway serve``: run the gateway under uvicorn, every option from the
environment (``HOST``, ``PORT``, ``WEB_CONCURRENCY``, ``METRICS_PORT``, ...)."""

from __future__ import annotations

import argparse

from shopstack_common.serving import serve_asgi
from shopstack_gateway.config import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shopstack-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway under uvicorn (options: environment)")
    parser.parse_args(argv)
    settings = GatewaySettings()
    # One heartbeat for both ends of a proxied WebSocket: uvicorn pings the client end.
    serve_asgi(
        "shopstack_gateway.asgi:app",
        settings,
        ws_ping_interval=settings.websocket_ping_interval_seconds,
        ws_ping_timeout=settings.websocket_ping_timeout_seconds,
    )
