"""Which HTTP client should the gateway proxy with? Measured, on this machine.

Not a test: it prints figures. The minimal upstream (``benchmarks/minimal_upstream.py``) runs
under uvicorn; in front of it, the same minimal pass-through proxy (plain ASGI under uvicorn,
one shared client made in the lifespan) for each candidate client: aiohttp's is the bare
pass-through baseline (``benchmarks/bare_passthrough.py``), httpx's is below. wrk measures
each at 1 and 32 connections, and the direct figure is the baseline. One uvicorn worker each,
on loopback.

    make bench-gateway-clients
    BENCH_DURATION=10 BENCH_ROUNDS=3 make bench-gateway-clients
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from benchmarks.bare_passthrough import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    lifespan,
    read_body,
    send_answer,
    upstream_url,
)
from benchmarks.processes import process, run_uvicorn, wait_ok
from benchmarks.report import Row, ratio_row, write_result
from benchmarks.wrk import WrkResult, problems, run_wrk
from shopstack_devstack.ports import free_port

NAME = "gateway-clients"
CLIENTS = ("aiohttp", "httpx")


def httpx_passthrough(upstream: str) -> ASGIApp:
    """``benchmarks.bare_passthrough`` with httpx's ``AsyncClient`` in aiohttp's place."""
    clients: list[httpx.AsyncClient] = []

    def start() -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        clients.append(httpx.AsyncClient(limits=limits))

    async def stop() -> None:
        await clients[0].aclose()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, start=start, stop=stop)
            return
        body = await read_body(receive)
        url = upstream_url(upstream, scope)
        response = await clients[0].request(scope["method"], url, content=body or None)
        content_type = response.headers.get("Content-Type")
        await send_answer(send, response.status_code, content_type, response.content)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-httpx", action="store_true")
    parser.add_argument("--port", type=int)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "3")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "1")))
    args = parser.parse_args()
    if args.serve_httpx:
        run_uvicorn(httpx_passthrough(args.upstream), args.port)
        return

    logs = Path(tempfile.mkdtemp(prefix="shopstack-bench-clients-"))
    python = sys.executable
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    servers: dict[str, list[str]] = {
        "aiohttp": [python, "-m", "benchmarks.bare_passthrough"],
        "httpx": [python, __file__, "--serve-httpx"],
    }
    figures: list[Row] = []
    invalid: list[str] = []
    upstream_argv = [python, "-m", "benchmarks.minimal_upstream", "--port", str(upstream_port)]
    with process("upstream", upstream_argv, {}, logs):
        wait_ok(upstream + "/", logs, "upstream")
        print(f"\nminimal pass-through proxies, 1 uvicorn worker each, wrk -t1, {args.duration}s")
        columns = [("client", "<10"), ("conns", ">6"), ("rps", ">9"), ("p50", ">9")]
        columns += [("p99", ">9"), ("direct rps", ">12"), ("ratio", ">8")]
        print("".join(f"{name:{spec}}" for name, spec in columns))
        for client, command in servers.items():
            port = free_port()
            proxy = f"http://127.0.0.1:{port}/"
            argv = [*command, "--port", str(port), "--upstream", upstream]
            with process(client, argv, {}, logs):
                wait_ok(proxy, logs, client)
                run_wrk(proxy, 4, 1, {})
                for connections in (1, 32):
                    direct_runs: list[WrkResult] = []
                    proxied: list[WrkResult] = []
                    for _ in range(args.rounds):
                        direct_runs.append(run_wrk(upstream + "/", connections, args.duration, {}))
                        proxied.append(run_wrk(proxy, connections, args.duration, {}))
                    invalid += problems(f"{client} c{connections}", direct_runs + proxied)
                    direct = statistics.median(r.requests_per_second for r in direct_runs)
                    rps = statistics.median(r.requests_per_second for r in proxied)
                    middle = sorted(proxied, key=lambda r: r.requests_per_second)[len(proxied) // 2]
                    print(
                        f"{client:<10}{connections:>6}{rps:>9.0f}{middle.p50_ms:>8.2f}m"
                        f"{middle.p99_ms:>8.2f}m{direct:>12.0f}{rps / direct:>7.2f}x"
                    )
                    figures.append(
                        ratio_row(
                            f"{client} pass-through, {connections} conn",
                            rps,
                            "req/s",
                            baseline_name="minimal upstream direct",
                            baseline=direct,
                        )
                    )
        print(f"\n(median of {args.rounds} runs; logs in {logs})")
    if invalid:
        print("\nNOT VALID:\n  " + "\n  ".join(invalid))
        raise SystemExit(1)
    write_result(NAME, figures)


if __name__ == "__main__":
    main()
