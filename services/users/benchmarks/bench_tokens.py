"""Token endpoint figures: argon2id cost per login and token endpoint throughput.

    make bench-users                     (embedded PostgreSQL and Redis, gunicorn on loopback)
    SHOPSTACK_BENCH_REQUESTS=400 make bench-users

Prints figures and ratios; asserts nothing. The service runs as `make up` runs it (gunicorn,
gthread workers) on 127.0.0.1; every request loop is bounded.
"""

from __future__ import annotations

import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from shopstack_common.migrations import upgrade
from shopstack_common.settings import sqlalchemy_url
from shopstack_devstack.backends import start_servers
from shopstack_devstack.ports import free_port
from shopstack_users.cli import MIGRATIONS
from shopstack_users.config import UsersSettings
from shopstack_users.keys import write_new_key
from shopstack_users.passwords import Passwords, make_hasher

REQUESTS = int(os.environ.get("SHOPSTACK_BENCH_REQUESTS", "200"))
CONCURRENCY = int(os.environ.get("SHOPSTACK_BENCH_CONCURRENCY", "8"))
WORKERS = int(os.environ.get("SHOPSTACK_BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("SHOPSTACK_BENCH_THREADS", "4"))
PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway account on a throwaway database


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def line(name: str, durations: list[float], wall: float | None = None) -> str:
    ms = [d * 1000 for d in durations]
    text = (
        f"{name:<28} n={len(ms):<5} mean={statistics.fmean(ms):7.2f} ms  "
        f"p50={percentile(ms, 0.5):7.2f} ms  p95={percentile(ms, 0.95):7.2f} ms"
    )
    if wall is not None:
        text += f"  {len(ms) / wall:8.1f} req/s"
    return text


def bench_argon2() -> float:
    settings = UsersSettings(database_url="postgresql://x@h/d", redis_url="redis://h")
    passwords = Passwords(make_hasher(settings))
    hashes, verifies = [], []
    stored = passwords.hash(PASSWORD)
    for _ in range(20):
        started = time.perf_counter()
        passwords.hash(PASSWORD)
        hashes.append(time.perf_counter() - started)
        started = time.perf_counter()
        passwords.verify(stored, PASSWORD)
        verifies.append(time.perf_counter() - started)
    print("argon2id (m=19 MiB, t=2, p=1), one thread:")
    print("  " + line("hash (register)", hashes))
    print("  " + line("verify (each login)", verifies))
    return statistics.fmean(verifies)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the users service exited while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the users service was not ready at {url}")


def run(
    name: str, count: int, request: Callable[[httpx.Client, int], httpx.Response]
) -> tuple[float, list[float]]:
    durations: list[float] = []
    failures = 0

    def one(client: httpx.Client, n: int) -> None:
        nonlocal failures
        started = time.perf_counter()
        response = request(client, n)
        durations.append(time.perf_counter() - started)
        if response.status_code != 200:
            failures += 1

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(CONCURRENCY) as pool:
        wall_started = time.perf_counter()
        list(pool.map(lambda n: one(client, n), range(count)))
        wall = time.perf_counter() - wall_started
    print("  " + line(name, durations, wall) + (f"  ({failures} failed)" if failures else ""))
    return count / wall, durations


def bench_endpoint() -> None:
    backend = os.environ.get("SHOPSTACK_BENCH_BACKEND", "embedded")
    with start_servers(backend) as servers, tempfile.TemporaryDirectory() as tmp:
        name = f"shopstack_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        database_url = servers.postgres_url.rsplit("/", 1)[0] + f"/{name}"
        upgrade(MIGRATIONS, sqlalchemy_url(database_url, "psycopg"), "users")
        keys = Path(tmp) / "keys"
        write_new_key(keys, "2026-01-01")
        port = free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "development",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "REDIS_URL": servers.redis_url,
            "JWT_SIGNING_KEYS_DIR": str(keys),
            "LOGIN_MAX_FAILURES": "1000000",
            "PROMETHEUS_MULTIPROC_DIR": str(Path(tmp) / "metrics"),
            "PORT": str(port),
            "WEB_CONCURRENCY": str(WORKERS),
            "WEB_THREADS": str(THREADS),
        }
        command = [sys.executable, "-m", "shopstack_users", "serve"]
        process = subprocess.Popen(  # noqa: S603 - our own service
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base}/readyz", process)
            created = subprocess.run(  # noqa: S603 - our own service's CLI
                [
                    *(sys.executable, "-m", "shopstack_users", "create-client"),
                    *("--client-id", "bench", "--scope", "orders:read"),
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            client_secret = created.stdout.split("client_secret:")[1].split()[0]
            with httpx.Client(base_url=base) as setup:
                for n in range(CONCURRENCY):
                    setup.post(
                        "/api/v1/auth/register",
                        json={"email": f"u{n}@bench.test", "password": PASSWORD, "full_name": "B"},
                    ).raise_for_status()
            token_url = f"{base}/api/v1/auth/token"
            print(
                f"\ntoken endpoint: gunicorn {WORKERS} workers x {THREADS} threads, "
                f"{CONCURRENCY} concurrent clients, {REQUESTS} requests per grant "
                f"({os.cpu_count()} cores, {servers.detail}):"
            )

            def password(client: httpx.Client, n: int) -> httpx.Response:
                grant = {"username": f"u{n % CONCURRENCY}@bench.test", "password": PASSWORD}
                return client.post(token_url, data={"grant_type": "password", **grant})

            password_rate, _ = run("password grant", REQUESTS, password)

            # Each refresh consumes its token; give every request a token of its own.
            with httpx.Client() as setup:
                refresh_tokens = [
                    password(setup, n).json()["refresh_token"] for n in range(REQUESTS)
                ]

            def refresh(client: httpx.Client, n: int) -> httpx.Response:
                grant = {"refresh_token": refresh_tokens[n]}
                return client.post(token_url, data={"grant_type": "refresh_token", **grant})

            refresh_rate, _ = run("refresh_token grant", REQUESTS, refresh)
            basic = base64.b64encode(f"bench:{client_secret}".encode()).decode()

            def client_credentials(client: httpx.Client, _: int) -> httpx.Response:
                return client.post(
                    token_url,
                    data={"grant_type": "client_credentials"},
                    headers={"Authorization": f"Basic {basic}"},
                )

            run("client_credentials grant", REQUESTS, client_credentials)

            def jwks(client: httpx.Client, _: int) -> httpx.Response:
                return client.get(f"{base}/.well-known/jwks.json")

            run("GET /.well-known/jwks.json", REQUESTS, jwks)
            print(
                f"\nrefresh grant / password grant throughput: {refresh_rate / password_rate:.1f}x "
                "(the difference is argon2id, which only password and client_credentials pay)"
            )
        finally:
            process.terminate()
            process.wait(30)
            with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    verify_seconds = bench_argon2()
    cores = os.cpu_count() or 1
    print(f"  => at most ~{cores / verify_seconds:.0f} password logins/s on {cores} cores")
    bench_endpoint()


if __name__ == "__main__":
    main()
