"""Flask vs FastAPI, measured: the same work, a cached read of one entity by id, in users
(Flask under gunicorn, gthread) and in orders (FastAPI under uvicorn), one worker each.

Not a test: it prints figures and writes test-results/bench/frameworks.json. It starts
embedded PostgreSQL and Redis, migrates both services into one database, starts each with
the command its image runs (``shopstack-<service> serve``) and one worker, creates one user
and one product, then runs wrk on loopback against

  users   GET /api/v1/users/{id}     the user's own record: Redis GET, else PostgreSQL
  orders  GET /api/v1/products/{id}  a product: one Redis script call, else PostgreSQL

with the identity headers the gateway would send (both services trust them; orders' route
is public and ignores them). Both answers come from Redis after the first read. The two
take turns, ``--rounds`` times per connection count, and the median is kept, so a noisy
neighbour hurts both alike. Service CPU per request is read from /proc around each run.

    make bench-frameworks
    BENCH_DURATION=5 BENCH_ROUNDS=3 make bench-frameworks
    PROFILE=1 make bench-frameworks    # and py-spy on both during the first run at the most
                                       # connections: where their CPU goes, by package
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg

from benchmarks.processes import process, wait_ok
from benchmarks.report import Row, ratio_row, write_result
from benchmarks.wrk import WrkResult, median, run_wrk
from shopstack_common.identity import ROLES_HEADER, USER_ID_HEADER
from shopstack_devstack.backends import start_servers
from shopstack_devstack.paths import REPO_ROOT
from shopstack_devstack.ports import free_port
from shopstack_users.keys import write_new_key

sys.path.insert(0, str(REPO_ROOT / "services" / "gateway" / "benchmarks"))
# A script beside gateway's other benchmarks, not a package mypy can follow.
from bench_gateway import create_product  # type: ignore[import-not-found]

USERS = "users (Flask, gunicorn gthread)"
PY_SPY = [str(REPO_ROOT / ".tools" / "uv" / "bin" / "uv"), "tool", "run", "--from", "py-spy==0.4.3"]
# A frame of py-spy's raw (collapsed) output: "function (path:line)".
_FRAME_PATH = re.compile(r"\((.+?)(?::\d+)?\)$")
ORDERS = "orders (FastAPI, uvicorn)"


def cpu_seconds(pid: int) -> float:
    """CPU used so far by a server and its workers."""
    root = psutil.Process(pid)
    total = 0.0
    for member in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def server_pid(port: int) -> Iterator[int]:
    """The pid of the process listening on ``port`` (the server's master or only process)."""
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == "LISTEN":
            assert connection.pid is not None
            yield psutil.Process(connection.pid).pid
            return
    raise SystemExit(f"nothing listens on {port}")


def register_user(users_url: str) -> str:
    body = json.dumps(
        {
            "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
            "password": "a benchmark passphrase, long enough",
            "full_name": "Benchmark",
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        users_url + "/api/v1/auth/register",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        user_id: str = json.load(response)["id"]
    return user_id


def package(frame: str) -> str:
    """Where a frame's code lives: the installed package, shopstack's own, or the stdlib."""
    match = _FRAME_PATH.search(frame)
    path = match.group(1) if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/shopstack_" in path:
        return "shopstack_" + path.split("/src/shopstack_", 1)[1].split("/", 1)[0]
    return "stdlib " + Path(path).stem if path.endswith(".py") else path


def print_profile(name: str, collapsed: Path) -> None:
    """py-spy's samples by package: its own time (the innermost frame) and its inclusive
    time (anywhere on the stack), as shares of all samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[package(frames[-1])] += count
        for found in {package(frame) for frame in frames}:
            inclusive[found] += count
    print(f"\n  {name}: {total} samples; own / inclusive share by package (py-spy)")
    for found, count in own.most_common(12):
        print(f"    {found:<36}{100 * count / total:6.1f}% {100 * inclusive[found] / total:6.1f}%")


def measure(
    url: str,
    pid: int,
    connections: int,
    duration: int,
    headers: dict[str, str],
    *,
    profile: Path | None = None,
) -> tuple[WrkResult, float, float]:
    """One wrk run, the server's CPU milliseconds per request during it and the cores it
    kept busy (CPU seconds per second); with
    ``profile``, py-spy records the server meanwhile into that file."""
    spy = None
    if profile is not None:
        spy = subprocess.Popen(  # noqa: S603 - py-spy on our own server
            [*PY_SPY, "py-spy", "record", "--pid", str(pid), "--subprocesses", "--gil",
             "--full-filenames", "--format",
             "raw", "--duration", str(duration), "--rate", "200", "--output", str(profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    before = cpu_seconds(pid)
    result = run_wrk(url, connections, duration, headers)
    spent = cpu_seconds(pid) - before
    if spy is not None and spy.wait(60) != 0:
        raise SystemExit(f"py-spy failed (exit {spy.returncode}) on {pid}")
    requests = result.requests_per_second * duration
    return result, 1000 * spent / requests if requests else float("nan"), spent / duration


def main() -> None:  # noqa: PLR0915 - one straight script: set up, measure, print
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "3")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "4")))
    parser.add_argument(
        "--connections",
        default=os.environ.get("BENCH_CONNECTIONS", "1,32"),
        help="comma-separated connection counts",
    )
    parser.add_argument("--profile", action="store_true", default=bool(os.environ.get("PROFILE")))
    args = parser.parse_args()
    connection_counts = [int(c) for c in args.connections.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="shopstack-bench-frameworks-"))
    python = sys.executable
    with start_servers("embedded") as servers:
        database = "shopstack_bench_frameworks"
        with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        keys = logs / "keys"
        write_new_key(keys, "2026-01-01")
        common = {
            "ENVIRONMENT": "production",
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": servers.postgres_url.rsplit("/", 1)[0] + f"/{database}",
            "REDIS_URL": servers.redis_url,
            "JWT_SIGNING_KEYS_DIR": str(keys),
            "WEB_CONCURRENCY": "1",
        }
        migrations = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                [python, "-m", f"shopstack_{service}", "migrate"], env={**os.environ, **common}
            )
            for service in ("users", "orders")
        ]
        if any(migration.wait() != 0 for migration in migrations):
            raise SystemExit("a migration failed")
        users_port, orders_port = free_port(), free_port()
        users_url, orders_url = f"http://127.0.0.1:{users_port}", f"http://127.0.0.1:{orders_port}"
        with (
            process(
                "users",
                [python, "-m", "shopstack_users", "serve"],
                {
                    **common,
                    "PORT": str(users_port),
                    "WEB_THREADS": str(args.threads),
                    "PROMETHEUS_MULTIPROC_DIR": str(logs / "users-metrics"),
                },
                logs,
            ),
            process(
                "orders",
                [python, "-m", "shopstack_orders", "serve"],
                {**common, "PORT": str(orders_port)},
                logs,
            ),
        ):
            wait_ok(users_url + "/readyz", logs, "users")
            wait_ok(orders_url + "/readyz", logs, "orders")
            user_id = register_user(users_url)
            product_id = create_product(orders_url)
            headers = {USER_ID_HEADER: user_id, ROLES_HEADER: "customer"}
            targets = {
                USERS: (users_url + f"/api/v1/users/{user_id}", users_port),
                ORDERS: (orders_url + f"/api/v1/products/{product_id}", orders_port),
            }
            pids: dict[str, int] = {}
            for name, (url, port) in targets.items():
                with server_pid(port) as pid:
                    pids[name] = pid
                # Fills the cache and warms the process.
                run_wrk(url, 4, 2, headers)
            print(
                f"\ncached read by id, 1 worker each (users: gthread, {args.threads} threads); "
                f"wrk -t1, {args.duration}s per run, median of {args.rounds}; logs in {logs}\n"
            )
            header = (
                f"{'conns':>5}  {'service':<34}{'rps':>8}{'p50 ms':>9}{'p99 ms':>9}"
                f"{'CPU ms/req':>12}{'cores':>7}"
            )
            print(header)
            print("-" * len(header))
            problems: list[str] = []
            rows: list[Row] = []
            for connections in connection_counts:
                runs: dict[str, list[WrkResult]] = {name: [] for name in targets}
                cpu: dict[str, list[float]] = {name: [] for name in targets}
                busy: dict[str, list[float]] = {name: [] for name in targets}
                for round_ in range(args.rounds):
                    for name, (url, _port) in targets.items():
                        profiling = (
                            args.profile and round_ == 0 and connections == max(connection_counts)
                        )
                        result, per_request, cores = measure(
                            url, pids[name], connections, args.duration, headers,
                            profile=logs / f"{name.split()[0]}.py-spy.txt" if profiling else None,
                        )  # fmt: skip
                        runs[name].append(result)
                        cpu[name].append(per_request)
                        busy[name].append(cores)
                        if result.non_2xx or result.errors:
                            problems.append(
                                f"{name} c{connections}: {result.non_2xx} non-2xx {result.errors}"
                            )
                kept = {name: median(results) for name, results in runs.items()}
                for name, result in kept.items():
                    print(
                        f"{connections:>5}  {name:<34}{result.requests_per_second:>8.0f}"
                        f"{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
                        f"{statistics.median(cpu[name]):>12.3f}"
                        f"{statistics.median(busy[name]):>7.2f}"
                    )
                users, orders = kept[USERS], kept[ORDERS]
                ratio = users.requests_per_second / orders.requests_per_second
                print(f"{'':>5}  {'users / orders':<34}{ratio:>7.2f}x")
                figure = f"cached read by id, {connections} conn, 1 worker"
                rows += [
                    ratio_row(
                        f"{figure}: {USERS} req/s", users.requests_per_second, "req/s",
                        baseline_name=f"{ORDERS}", baseline=orders.requests_per_second,
                    ),
                    ratio_row(
                        f"{figure}: {USERS} p50", users.p50_ms, "ms",
                        baseline_name=f"{ORDERS}", baseline=orders.p50_ms,
                    ),
                    ratio_row(
                        f"{figure}: {USERS} CPU per request",
                        statistics.median(cpu[USERS]), "ms",
                        baseline_name=f"{ORDERS}", baseline=statistics.median(cpu[ORDERS]),
                    ),
                ]  # fmt: skip
            print(
                "\n(ratio = users rps / orders rps; CPU: the server's processes, per request;"
                " cores: their CPU seconds per second of the run)"
            )
            if args.profile:
                for name in targets:
                    print_profile(name, logs / f"{name.split()[0]}.py-spy.txt")
            if problems:
                print("\nNOT VALID:\n  " + "\n  ".join(problems))
                raise SystemExit(1)
            print(f"\nwrote {write_result('frameworks', rows)}")


if __name__ == "__main__":
    main()
