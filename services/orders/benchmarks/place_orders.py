"""Benchmark: concurrent orders against one hot product, on the real service.

Starts PostgreSQL and Redis (the embedded servers `make up` and the tests use), migrates a
fresh database, runs the orders service under uvicorn as production does, and drives it
over HTTP with aiohttp. In the same run it measures two baselines, so the figures read as
ratios on whatever machine runs them:

* ``GET /healthz`` at the same concurrency: the HTTP stack's ceiling, no database.
* orders placed one at a time over one connection: the cost of one order, no contention.

Then every request orders one unit of the same product, more requests than there is stock,
at the chosen concurrency: once without and once with an ``Idempotency-Key``. It prints
orders/s, latency percentiles for accepted and refused orders, successes against stock, and
the oversell count read from the database (it must be 0; the script exits non-zero if not).

    make bench-orders                       # defaults
    make bench-orders ARGS="--concurrency 64 --requests 6000 --stock 4000 --workers 1"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
import psutil
import psycopg

from shopstack_common.identity import Identity
from shopstack_common.migrations import upgrade
from shopstack_common.settings import sqlalchemy_url
from shopstack_devstack.backends import Servers, start_servers
from shopstack_devstack.ports import free_port
from shopstack_orders.cli import MIGRATIONS
from shopstack_orders.models import SCHEMA

ADMIN = Identity(user_id=uuid.uuid4(), roles=frozenset({"admin"})).to_headers()


class CpuMeter:
    """CPU seconds used by the service's processes and by PostgreSQL, read from the OS."""

    def __init__(self, service_pid: int, postgres_port: int) -> None:
        self.service = psutil.Process(service_pid)
        self.postgres = next(
            p
            for p in psutil.process_iter(["cmdline"])
            if f"port={postgres_port}" in " ".join(p.info["cmdline"] or [])
        )

    @staticmethod
    def _tree(process: psutil.Process) -> float:
        total = 0.0
        for one in [process, *process.children(recursive=True)]:
            try:
                times = one.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def read(self) -> tuple[float, float]:
        return self._tree(self.service), self._tree(self.postgres)


@dataclass
class Run:
    name: str
    cpu: tuple[float, float] = (0.0, 0.0)  # service and PostgreSQL CPU seconds used
    started: float = 0.0
    elapsed: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    # When the last answer of each status arrived, relative to the start.
    last_at: dict[int, float] = field(default_factory=dict)

    def record(self, status: int, seconds: float) -> None:
        self.statuses[status] += 1
        self.latencies.setdefault(status, []).append(seconds)
        self.last_at[status] = time.perf_counter() - self.started

    def rate(self, status: int | None = None) -> float:
        """Answers per second: all of them over the whole run, or one status over the time
        until its last answer (accepted orders stop when the stock runs out)."""
        if status is None:
            return sum(self.statuses.values()) / self.elapsed if self.elapsed else 0.0
        window = self.last_at.get(status, 0.0)
        return self.statuses[status] / window if window else 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_line(run: Run) -> str:
    answered = sum(run.statuses.values()) or 1
    service, postgres = run.cpu
    return (
        f"CPU per request: service {service / answered * 1000:.2f} ms, "
        f"PostgreSQL {postgres / answered * 1000:.2f} ms"
    )


def latency_line(run: Run, status: int, label: str) -> str:
    values = run.latencies.get(status, [])
    if not values:
        return f"  {label:<28} none"
    return (
        f"  {label:<28} {len(values):>6}   p50 {percentile(values, 0.50) * 1000:7.1f} ms   "
        f"p99 {percentile(values, 0.99) * 1000:7.1f} ms   "
        f"mean {statistics.fmean(values) * 1000:7.1f} ms"
    )


async def drive(
    name: str,
    total: int,
    concurrency: int,
    request: Callable[[int], Awaitable[int]],
    meter: CpuMeter | None = None,
) -> Run:
    """Send ``total`` requests from ``concurrency`` workers; each returns its status."""
    run = Run(name)
    before = meter.read() if meter else (0.0, 0.0)
    counter = iter(range(total))

    async def worker() -> None:
        for number in counter:
            started = time.perf_counter()
            status = await request(number)
            run.record(status, time.perf_counter() - started)

    run.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - run.started
    if meter:
        after = meter.read()
        run.cpu = (after[0] - before[0], after[1] - before[1])
    return run


# -- the stack ------------------------------------------------------------------------------


def create_database(servers: Servers) -> str:
    name = f"shopstack_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = servers.postgres_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(MIGRATIONS, sqlalchemy_url(url, "psycopg"), SCHEMA)
    return url


@contextmanager
def orders_service(
    database_url: str, redis_url: str, workers: int, pool_size: int
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = os.environ | {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",  # the access log would measure the terminal, not the service
        "DB_POOL_SIZE": str(pool_size),
        "DB_MAX_OVERFLOW": "0",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "shopstack_orders", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base, process))
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"the orders service exited:\n{error[-2000:]}")
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the orders service did not become ready")


def database_truth(database_url: str, product_id: str) -> tuple[int, int]:
    """(units held by orders, stock left) for the product, from PostgreSQL itself."""
    with psycopg.connect(database_url) as connection:
        sold = connection.execute(
            "SELECT coalesce(sum(i.quantity), 0) FROM orders.order_items i "
            "JOIN orders.orders o ON o.id = i.order_id "
            "WHERE i.product_id = %s AND o.status <> 'cancelled'",
            (product_id,),
        ).fetchone()
        left = connection.execute(
            "SELECT stock FROM orders.products WHERE id = %s", (product_id,)
        ).fetchone()
    assert sold is not None
    assert left is not None
    return int(sold[0]), int(left[0])


# -- the benchmark --------------------------------------------------------------------------


async def benchmark(base: str, database_url: str, meter: CpuMeter, args: argparse.Namespace) -> int:
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(base, connector=connector) as http:

        async def new_product(stock: int) -> str:
            body = {
                "sku": f"BENCH-{uuid.uuid4().hex[:12]}",
                "name": "Hot kettle",
                "price": 2599,
                "currency": "EUR",
                "stock": stock,
            }
            async with http.post("/api/v1/products", json=body, headers=ADMIN) as response:
                assert response.status == 201, await response.text()
                product_id: str = (await response.json())["id"]
                return product_id

        def order(product_id: str, *, with_key: bool) -> Callable[[int], Awaitable[int]]:
            async def send(_: int) -> int:
                headers = Identity(user_id=uuid.uuid4(), roles=frozenset({"customer"}))
                sent = headers.to_headers()
                if with_key:
                    sent["Idempotency-Key"] = uuid.uuid4().hex
                body = {"items": [{"product_id": product_id, "quantity": 1}]}
                async with http.post("/api/v1/orders", json=body, headers=sent) as response:
                    await response.read()
                    return response.status

            return send

        async def healthz(_: int) -> int:
            async with http.get("/healthz") as response:
                await response.read()
                return response.status

        # Warm up connections, pools and caches before anything is timed.
        await drive("warm-up", 200, args.concurrency, healthz)
        warm = await new_product(100)
        await drive("warm-up", 100, min(args.concurrency, 20), order(warm, with_key=True))

        health = await drive("healthz", args.requests, args.concurrency, healthz, meter)
        serial_product = await new_product(args.serial)
        serial = await drive("serial", args.serial, 1, order(serial_product, with_key=False), meter)

        runs: list[tuple[Run, str]] = []
        for with_key in (False, True):
            hot = await new_product(args.stock)
            label = "hot product, Idempotency-Key" if with_key else "hot product"
            run = await drive(
                label, args.requests, args.concurrency, order(hot, with_key=with_key), meter
            )
            runs.append((run, hot))

    return report(args, database_url, health, serial, runs)


def report(
    args: argparse.Namespace,
    database_url: str,
    health: Run,
    serial: Run,
    runs: list[tuple[Run, str]],
) -> int:
    """Print the figures; returns how many hot-product runs oversold or lost count."""
    serial_p50 = percentile(serial.latencies[201], 0.5) * 1000
    print()
    print(
        f"orders benchmark: {args.requests} requests, concurrency {args.concurrency}, "
        f"stock {args.stock}, uvicorn workers {args.workers}, pool {args.pool_size}, "
        f"{os.cpu_count()} CPUs shared by client, service, PostgreSQL and Redis"
    )
    print(f"  baseline GET /healthz        {health.rate(200):8.0f} req/s   {cpu_line(health)}")
    print(
        f"  baseline serial orders       {serial.rate(201):8.0f} orders/s "
        f"(one connection, p50 {serial_p50:.1f} ms)   {cpu_line(serial)}"
    )
    failures = 0
    for run, product_id in runs:
        sold, left = database_truth(database_url, product_id)
        accepted = run.statuses[201]
        oversell = max(0, sold - args.stock)
        consistent = sold == accepted and sold + left == args.stock and left >= 0
        # 503 is the service shedding load (no pool connection in time): reported, not wrong.
        other = {s: n for s, n in run.statuses.items() if s not in {201, 409, 503}}
        print()
        print(f"  {run.name}")
        print(
            f"    orders/s (until sold out)  {run.rate(201):8.0f}"
            f"   = {run.rate(201) / serial.rate(201):.2f}x serial,"
            f" {run.rate(201) / health.rate(200):.3f}x healthz"
        )
        print(
            f"    requests/s (all answers)   {run.rate():8.0f}   in {run.elapsed:.2f} s   "
            f"{cpu_line(run)}"
        )
        print(latency_line(run, 201, "  201 accepted"))
        print(latency_line(run, 409, "  409 out of stock"))
        if run.statuses[503]:
            print(latency_line(run, 503, "  503 shed (pool timeout)"))
        print(
            f"    successes vs stock         {accepted} of {args.stock} "
            f"(database: {sold} sold, {left} left)"
        )
        print(f"    oversell                   {oversell}")
        if other:
            print(f"    other statuses             {other}")
        if oversell or not consistent or other:
            failures += 1
    print()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--stock", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serial", type=int, default=300, help="orders in the serial baseline")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes"
    )
    parser.add_argument("--pool-size", type=int, default=10, help="connections per worker")
    args = parser.parse_args()
    print("starting PostgreSQL and Redis (embedded) ...", flush=True)
    with start_servers("embedded") as servers:
        database_url = create_database(servers)
        with orders_service(database_url, servers.redis_url, args.workers, args.pool_size) as (
            base,
            pid,
        ):
            meter = CpuMeter(pid, int(servers.postgres_url.rsplit(":", 1)[1].split("/")[0]))
            failures = asyncio.run(benchmark(base, database_url, meter, args))
    if failures:
        raise SystemExit("FAILED: oversold, stock and orders disagree, or unexpected statuses")


if __name__ == "__main__":
    main()
