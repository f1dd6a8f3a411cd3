"""Gateway overhead: the same cached product read, directly against orders and through the gateway.

Not a test: it prints figures. It starts embedded PostgreSQL and Redis (the test backends),
the real orders service and the real gateway under uvicorn with the same worker count, a small
JWKS server for a benchmark signing key, creates one product, then runs wrk on loopback at 1 and
32 connections for each target and prints requests/s, p50/p99 and the gateway/direct ratios.

Rows:
  public   GET /api/v1/products/{id} with no token (a public route at the gateway)
  token    the same read with a bearer token (the gateway verifies it; orders sees identity)

The gateway's rate limiter runs (one Redis round trip per request) with limits too high to be
reached, so the figures include it. The machine may be shared: each figure is the median of
``--rounds`` runs, direct and through the gateway taking turns, so a noisy neighbour hurts
both sides alike.

    make bench-gateway                          # defaults
    BENCH_DURATION=20 BENCH_ROUNDS=5 BENCH_WORKERS=1 make bench-gateway
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

from benchmarks.processes import process, wait_ok
from benchmarks.report import Row, ratio_row, row, write_result
from benchmarks.wrk import WrkResult, median, problems, run_wrk
from shopstack_common.identity import ROLES_HEADER, USER_ID_HEADER
from shopstack_devstack.backends import start_servers
from shopstack_devstack.ports import free_port
from shopstack_devstack.tokens import TokenIssuer

NAME = "gateway"


@contextlib.contextmanager
def jwks_server(jwks: dict[str, object]) -> Iterator[str]:
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


# -- the benchmark ----------------------------------------------------------------------


def create_product(orders_url: str) -> str:
    body = json.dumps(
        {
            "sku": f"BENCH-{uuid.uuid4().hex[:8]}",
            "name": "Benchmark kettle",
            "price": 2599,
            "currency": "EUR",
            "stock": 10,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        orders_url + "/api/v1/products",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            # Orders trusts the gateway's identity headers; talking to it directly, we are it.
            USER_ID_HEADER: str(uuid.uuid4()),
            ROLES_HEADER: "admin",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        product_id: str = json.load(response)["id"]
    return product_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "3")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "1")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    parser.add_argument(
        "--connections",
        default=os.environ.get("BENCH_CONNECTIONS", "1,32"),
        help="comma-separated connection counts",
    )
    args = parser.parse_args()
    connection_counts = [int(c) for c in args.connections.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="shopstack-bench-"))
    python = sys.executable
    issuer = TokenIssuer(kid="bench-key-1", lifetime_seconds=3600)
    token = issuer.mint(client_id="bench", scope="orders:read")

    with start_servers("embedded") as servers:
        database = "shopstack_bench"
        with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        database_url = servers.postgres_url.rsplit("/", 1)[0] + f"/{database}"
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [python, "-m", "shopstack_orders", "migrate"],
            env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": servers.redis_url},
            check=True,
        )
        orders_port, gateway_port = free_port(), free_port()
        orders_url = f"http://127.0.0.1:{orders_port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        common = {
            "ENVIRONMENT": "production",
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": database_url,
            "REDIS_URL": servers.redis_url,
        }
        huge = str(10**9)
        with (
            jwks_server(issuer.jwks) as jwks_url,
            process(
                "orders",
                [python, "-m", "shopstack_orders", "serve"],
                {**common, "PORT": str(orders_port), "WEB_CONCURRENCY": str(args.workers)},
                logs,
            ),
            process(
                "gateway",
                [python, "-m", "shopstack_gateway", "serve"],
                {
                    **common,
                    "PORT": str(gateway_port),
                    "WEB_CONCURRENCY": str(args.workers),
                    "GATEWAY_UPSTREAMS__ORDERS__URL": orders_url,
                    "GATEWAY_UPSTREAMS__USERS__URL": f"http://127.0.0.1:{free_port()}",
                    "GATEWAY_JWKS_URL": jwks_url,
                    "GATEWAY_RATE_LIMIT__ADDRESS__LIMIT": huge,
                    "GATEWAY_RATE_LIMIT__USER__LIMIT": huge,
                },
                logs,
            ),
        ):
            wait_ok(orders_url + "/readyz", logs, "orders")
            wait_ok(gateway_url + "/healthz", logs, "gateway")
            product_id = create_product(orders_url)
            path = f"/api/v1/products/{product_id}"
            # Fill the product cache and warm both processes.
            for base in (orders_url, gateway_url):
                run_wrk(base + path, 4, 2, {})
            rows = [("public", {}), ("token", {"Authorization": f"Bearer {token}"})]
            print(
                f"\nGET {path} (cached product read); {args.workers} uvicorn worker(s) each; "
                f"wrk -t1, {args.duration}s per run; logs in {logs}\n"
            )
            header = (
                f"{'row':<7}{'conns':>6}  {'direct rps':>11}{'p50':>9}{'p99':>9}  "
                f"{'gateway rps':>12}{'p50':>9}{'p99':>9}  {'ratio':>6}"
            )
            print(header)
            print("-" * len(header))
            invalid: list[str] = []
            figures: list[Row] = []
            for row_name, headers in rows:
                for connections in connection_counts:
                    runs: dict[str, list[WrkResult]] = {"direct": [], "gateway": []}
                    for _ in range(args.rounds):
                        runs["direct"].append(
                            run_wrk(orders_url + path, connections, args.duration, {})
                        )
                        runs["gateway"].append(
                            run_wrk(gateway_url + path, connections, args.duration, headers)
                        )
                    direct, through = median(runs["direct"]), median(runs["gateway"])
                    ratio = through.requests_per_second / direct.requests_per_second
                    print(
                        f"{row_name:<7}{connections:>6}  {direct.requests_per_second:>11.0f}"
                        f"{direct.p50_ms:>8.2f}m{direct.p99_ms:>8.2f}m  "
                        f"{through.requests_per_second:>12.0f}{through.p50_ms:>8.2f}m"
                        f"{through.p99_ms:>8.2f}m  {ratio:>5.2f}x"
                    )
                    figures += contract_rows(row_name, connections, direct, through)
                    for name, results in runs.items():
                        invalid += problems(f"{row_name} c{connections} {name}", results)
            invalid += limiter_problems(logs)
            print(
                f"\n(median of {args.rounds} runs each; p50/p99 in milliseconds; "
                "ratio = gateway rps / direct rps)"
            )
            if invalid:
                print("\nNOT VALID:\n  " + "\n  ".join(invalid))
                raise SystemExit(1)
            write_result(NAME, figures)


def limiter_problems(logs: Path) -> list[str]:
    """A rate limiter failing open would leave out the Redis round trip it costs."""
    gateway_log = (logs / "gateway.log").read_text(errors="replace")
    if "rate limiting (Redis) failing" in gateway_log:
        return ["the gateway's rate limiter failed (see gateway.log)"]
    return []


def contract_rows(
    row_name: str, connections: int, direct: WrkResult, through: WrkResult
) -> list[Row]:
    """In front of orders the gateway must keep >= 0.9x of direct throughput (under load);
    at one connection what it adds to p50 is the figure."""
    what = f"orders product read via gateway ({row_name}), {connections} conn"
    if connections == 1:
        return [
            row(
                f"{what}: added p50",
                round(through.p50_ms - direct.p50_ms, 3),
                "ms",
                baseline_name="direct p50",
                baseline=direct.p50_ms,
            )
        ]
    return [
        ratio_row(
            f"{what}: throughput",
            through.requests_per_second,
            "req/s",
            baseline_name="orders direct",
            baseline=direct.requests_per_second,
            at_least=0.9,
        )
    ]


if __name__ == "__main__":
    main()
