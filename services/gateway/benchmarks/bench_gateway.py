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
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

from shopstack_common.identity import ROLES_HEADER, USER_ID_HEADER
from shopstack_devstack.backends import start_servers
from shopstack_devstack.ports import free_port
from shopstack_devstack.tokens import TokenIssuer


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str


# -- processes --------------------------------------------------------------------------


@contextlib.contextmanager
def process(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Iterator[None]:
    log = (logs / f"{name}.log").open("wb")
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(5)
        log.close()


def wait_ok(url: str, logs: Path, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
    raise SystemExit(f"{name} did not answer {url} within {timeout:.0f}s:\n{tail}")


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


# -- wrk --------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(url: str, connections: int, duration: int, headers: dict[str, str]) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(  # noqa: S603 - wrk against loopback
        [*argv, url], capture_output=True, text=True, check=True
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output:\n{out}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=_latency_ms(out, "50"),
        p99_ms=_latency_ms(out, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(0) if errors else "",
    )


def median(results: list[WrkResult]) -> WrkResult:
    """The run with the median throughput (its own latencies with it)."""
    ordered = sorted(results, key=lambda r: r.requests_per_second)
    middle = ordered[len(ordered) // 2]
    return WrkResult(
        requests_per_second=statistics.median(r.requests_per_second for r in results),
        p50_ms=middle.p50_ms,
        p99_ms=middle.p99_ms,
        non_2xx=sum(r.non_2xx for r in results),
        errors="; ".join(r.errors for r in results if r.errors),
    )


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
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "10")))
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
            problems: list[str] = []
            for row, headers in rows:
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
                        f"{row:<7}{connections:>6}  {direct.requests_per_second:>11.0f}"
                        f"{direct.p50_ms:>8.2f}m{direct.p99_ms:>8.2f}m  "
                        f"{through.requests_per_second:>12.0f}{through.p50_ms:>8.2f}m"
                        f"{through.p99_ms:>8.2f}m  {ratio:>5.2f}x"
                    )
                    for name, results in runs.items():
                        for result in results:
                            if result.non_2xx or result.errors:
                                problems.append(
                                    f"{row} c{connections} {name}: {result.non_2xx} non-2xx "
                                    f"answers {result.errors}"
                                )
            gateway_log = (logs / "gateway.log").read_text(errors="replace")
            if "rate limiting (Redis) failing" in gateway_log:
                problems.append("the gateway's rate limiter failed (see gateway.log)")
            print(
                f"\n(median of {args.rounds} runs each; p50/p99 in milliseconds; "
                "ratio = gateway rps / direct rps)"
            )
            if problems:
                print("\nNOT VALID:\n  " + "\n  ".join(problems))
                raise SystemExit(1)


if __name__ == "__main__":
    main()
