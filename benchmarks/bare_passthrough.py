"""The simplest pass-through worth comparing a gateway with: plain ASGI under uvicorn
(httptools, uvloop), one shared ``aiohttp.ClientSession`` made in the lifespan, the method,
path, query and body sent on, the status, content type and body sent back. No auth, limits,
metrics, tracing or header policy: what is left is the cost of a proxy hop in Python.

    python -m benchmarks.bare_passthrough --port 8102 --upstream http://127.0.0.1:8101
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp

from benchmarks.processes import run_uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def lifespan(
    receive: Receive, send: Send, *, start: Callable[[], None], stop: Callable[[], Awaitable[None]]
) -> None:
    """The ASGI lifespan of a pass-through: its one client made at startup, closed at the end."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def upstream_url(upstream: str, scope: Scope) -> str:
    url: str = upstream + scope["path"]
    if scope["query_string"]:
        url += "?" + scope["query_string"].decode("latin-1")
    return url


async def send_answer(send: Send, status: int, content_type: str | None, body: bytes) -> None:
    content_type = content_type or "application/octet-stream"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode("latin-1"))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def passthrough(upstream: str) -> ASGIApp:
    sessions: list[aiohttp.ClientSession] = []

    def start() -> None:
        connector = aiohttp.TCPConnector(limit=100)
        sessions.append(aiohttp.ClientSession(connector=connector, auto_decompress=False))

    async def stop() -> None:
        await sessions[0].close()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, start=start, stop=stop)
            return
        body = await read_body(receive)
        url = upstream_url(upstream, scope)
        async with sessions[0].request(scope["method"], url, data=body or None) as response:
            content = await response.read()
            status, content_type = response.status, response.headers.get("Content-Type")
        await send_answer(send, status, content_type, content)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    run_uvicorn(passthrough(args.upstream.rstrip("/")), args.port)


if __name__ == "__main__":
    main()
