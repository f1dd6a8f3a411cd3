"""The gateway hop: what the gateway costs in front of an upstream that costs almost nothing.

Not a test: it prints figures and writes them (``benchmarks/report.py``). In one run it starts
embedded Redis, a JWKS server for a benchmark signing key, the minimal upstream
(``benchmarks/minimal_upstream.py``), the bare aiohttp pass-through in front of it
(``benchmarks/bare_passthrough.py``) and the real gateway in front of it as its orders
upstream, one uvicorn worker each. wrk reads ``GET /api/v1/orders`` (a route that needs a
token) with a bearer token, so the gateway does everything it does on every request: strips
identity headers, verifies the token, checks the rate limit in Redis (limits too high to be
reached), counts metrics, writes the access log line and traces at its default sampling.

Figures, direct, bare pass-through and gateway taking turns in each round:
- throughput at 32 connections; target: the gateway >= 0.6x the bare pass-through;
- p50 at 1 connection; target: the gateway adds <= 0.3 ms over direct.

    make bench-gateway-hop
    BENCH_DURATION=10 BENCH_ROUNDS=3 make bench-gateway-hop
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_gateway import jwks_server, limiter_problems

from benchmarks.processes import process, wait_ok
from benchmarks.report import ratio_row, row, write_result
from benchmarks.wrk import WrkResult, median, problems, run_wrk
from shopstack_devstack.ports import free_port
from shopstack_devstack.redis_server import EmbeddedRedis
from shopstack_devstack.tokens import TokenIssuer

NAME = "gateway-hop"
PATH = "/api/v1/orders"
THROUGHPUT_TARGET = 0.6  # x the bare pass-through, at 32 connections
ADDED_P50_TARGET_MS = 0.3  # over direct, at 1 connection


@contextlib.contextmanager
def redis_server(logs: Path) -> Iterator[str]:
    redis = EmbeddedRedis(logs / "redis", free_port(), durable=False)
    with process("redis", redis.command(), {}, logs):
        redis.wait_ready(30)
        yield redis.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "3")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="shopstack-bench-hop-"))
    python = sys.executable
    issuer = TokenIssuer(kid="bench-key-1", lifetime_seconds=3600)
    headers = {"Authorization": f"Bearer {issuer.mint(client_id='bench', scope='orders:read')}"}
    upstream_port, bare_port, gateway_port = free_port(), free_port(), free_port()
    urls = {
        "direct": f"http://127.0.0.1:{upstream_port}",
        "bare": f"http://127.0.0.1:{bare_port}",
        "gateway": f"http://127.0.0.1:{gateway_port}",
    }
    huge = str(10**9)
    bare = [python, "-m", "benchmarks.bare_passthrough"]
    with (
        redis_server(logs) as redis_url,
        jwks_server(issuer.jwks) as jwks_url,
        process(
            "upstream",
            [python, "-m", "benchmarks.minimal_upstream", "--port", str(upstream_port)],
            {},
            logs,
        ),
        process(
            "bare",
            [*bare, "--port", str(bare_port), "--upstream", urls["direct"]],
            {},
            logs,
        ),
        process(
            "gateway",
            [python, "-m", "shopstack_gateway", "serve"],
            {
                "ENVIRONMENT": "production",
                "LOG_LEVEL": "INFO",
                "REDIS_URL": redis_url,
                "PORT": str(gateway_port),
                "WEB_CONCURRENCY": "1",
                "GATEWAY_UPSTREAMS__ORDERS__URL": urls["direct"],
                "GATEWAY_UPSTREAMS__USERS__URL": f"http://127.0.0.1:{free_port()}",
                "GATEWAY_JWKS_URL": jwks_url,
                "GATEWAY_RATE_LIMIT__ADDRESS__LIMIT": huge,
                "GATEWAY_RATE_LIMIT__USER__LIMIT": huge,
            },
            logs,
        ),
    ):
        for name, url in urls.items():
            wait_ok(url + ("/healthz" if name == "gateway" else PATH), logs, name)
            run_wrk(url + PATH, 4, 1, headers)  # warm up, and fetch the signing keys
        print(
            f"\nGET {PATH} with a bearer token; 1 uvicorn worker each; wrk -t1, "
            f"{args.duration}s per run, median of {args.rounds}; logs in {logs}\n"
        )
        results: dict[tuple[str, int], WrkResult] = {}
        invalid: list[str] = []
        for connections in (32, 1):
            runs: dict[str, list[WrkResult]] = {name: [] for name in urls}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    runs[name].append(run_wrk(url + PATH, connections, args.duration, headers))
            for name, name_runs in runs.items():
                invalid += problems(f"{name} c{connections}", name_runs)
                results[name, connections] = result = median(name_runs)
                print(
                    f"{name:<8}{connections:>4} conn {result.requests_per_second:>9.0f} req/s"
                    f"  p50 {result.p50_ms:6.3f} ms  p99 {result.p99_ms:6.3f} ms"
                )
    invalid += limiter_problems(logs)
    if invalid:
        print("\nNOT VALID:\n  " + "\n  ".join(invalid))
        raise SystemExit(1)
    direct_p50 = results["direct", 1].p50_ms
    added = {name: results[name, 1].p50_ms - direct_p50 for name in ("bare", "gateway")}
    write_result(
        NAME,
        [
            ratio_row(
                "gateway hop, 32 conn: throughput",
                results["gateway", 32].requests_per_second,
                "req/s",
                baseline_name="bare pass-through",
                baseline=results["bare", 32].requests_per_second,
                at_least=THROUGHPUT_TARGET,
            ),
            row(
                "gateway hop, 1 conn: added p50 over direct",
                round(added["gateway"], 3),
                "ms",
                baseline_name="direct p50",
                baseline=direct_p50,
                target=f"<= {ADDED_P50_TARGET_MS} ms",
                met=added["gateway"] <= ADDED_P50_TARGET_MS,
            ),
            ratio_row(
                "bare pass-through, 32 conn: throughput",
                results["bare", 32].requests_per_second,
                "req/s",
                baseline_name="minimal upstream direct",
                baseline=results["direct", 32].requests_per_second,
            ),
            row(
                "bare pass-through, 1 conn: added p50 over direct",
                round(added["bare"], 3),
                "ms",
                baseline_name="direct p50",
                baseline=direct_p50,
            ),
        ],
    )
    shutil.rmtree(logs / "redis", ignore_errors=True)


if __name__ == "__main__":
    main()
