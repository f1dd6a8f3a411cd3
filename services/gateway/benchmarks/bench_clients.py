"""Which HTTP client should the gateway proxy with? Measured, on this machine.

Not a test: it prints figures. A minimal JSON endpoint runs under uvicorn; in front of it, a
minimal pass-through proxy (plain ASGI under uvicorn, one shared client created at startup)
for each candidate client; wrk measures each at 1 and 32 connections, and the direct figure
is the baseline. Everything runs with one uvicorn worker, on loopback.

    make bench-gateway-clients
    BENCH_DURATION=10 BENCH_ROUNDS=3 make bench-gateway-clients
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_gateway import process, run_wrk, wait_ok

from shopstack_devstack.ports import free_port

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CLIENTS = ("aiohttp", "httpx")
BODY = b'{"id":"0a57f37b","sku":"BENCH-1","name":"Benchmark kettle","price":2599,"stock":10}'


async def upstream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest JSON endpoint: what is left is server and client cost."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def proxy_app(client: str, upstream: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A pass-through proxy with one shared ``client``, made in the lifespan."""
    state: dict[str, Any] = {}

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if client == "aiohttp":
                    import aiohttp

                    state["session"] = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=100)
                    )
                else:
                    import httpx

                    state["session"] = httpx.AsyncClient(
                        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                session = state["session"]
                await (session.close() if client == "aiohttp" else session.aclose())
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        url = upstream + scope["path"]
        session = state["session"]
        if client == "aiohttp":
            async with session.get(url) as response:
                body = await response.read()
                status, headers = response.status, response.headers.items()
        else:
            response = await session.get(url)
            body, status, headers = response.content, response.status_code, response.headers.items()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (k.lower().encode(), v.encode())
                    for k, v in headers
                    if k.lower() in {"content-type"}
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def serve(kind: str, port: int, upstream: str) -> None:
    import uvicorn

    app = upstream_app if kind == "upstream" else proxy_app(kind, upstream)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=("upstream", *CLIENTS))
    parser.add_argument("--port", type=int)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.upstream)
        return

    import tempfile

    logs = Path(tempfile.mkdtemp(prefix="shopstack-bench-clients-"))
    me = [sys.executable, __file__]
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    ports = {client: free_port() for client in CLIENTS}
    with process("upstream", [*me, "--serve", "upstream", "--port", str(upstream_port)], {}, logs):
        wait_ok(upstream + "/", logs, "upstream")
        print(f"\nminimal pass-through proxies, 1 uvicorn worker each, wrk -t1, {args.duration}s")
        columns = [("client", "<10"), ("conns", ">6"), ("rps", ">9"), ("p50", ">9")]
        columns += [("p99", ">9"), ("direct rps", ">12"), ("ratio", ">8")]
        print("".join(f"{name:{spec}}" for name, spec in columns))
        for client, port in ports.items():
            argv = [*me, "--serve", client, "--port", str(port), "--upstream", upstream]
            with process(client, argv, {}, logs):
                wait_ok(f"http://127.0.0.1:{port}/", logs, client)
                run_wrk(f"http://127.0.0.1:{port}/", 4, 1, {})
                for connections in (1, 32):
                    direct_rps, proxied = [], []
                    for _ in range(args.rounds):
                        direct_rps.append(run_wrk(upstream + "/", connections, args.duration, {}))
                        proxied.append(
                            run_wrk(f"http://127.0.0.1:{port}/", connections, args.duration, {})
                        )
                    direct = statistics.median(r.requests_per_second for r in direct_rps)
                    rps = statistics.median(r.requests_per_second for r in proxied)
                    middle = sorted(proxied, key=lambda r: r.requests_per_second)[len(proxied) // 2]
                    print(
                        f"{client:<10}{connections:>6}{rps:>9.0f}{middle.p50_ms:>8.2f}m"
                        f"{middle.p99_ms:>8.2f}m{direct:>12.0f}{rps / direct:>7.2f}x"
                    )
        print(f"\n(median of {args.rounds} runs; logs in {logs})")


if __name__ == "__main__":
    main()
