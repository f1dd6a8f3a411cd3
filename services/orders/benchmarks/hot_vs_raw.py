"""Benchmark: hot-product orders through the service vs the same transaction as raw SQL.

One run, one PostgreSQL, one database (migrated by the service's Alembic history), one
uvicorn worker on each side with the same pool size:

* the raw-SQL baseline, ``benchmarks/raw_sql_order.py`` (asyncpg, data-modifying CTEs);
* the orders service, without and with an ``Idempotency-Key``.

Every request orders one unit of one hot product (a fresh product per run), more requests
than there is stock, at 32 connections; the runs alternate (raw, service, service with key,
``--rounds`` times) so drift on a shared machine hits all sides alike, and each figure is the
median over the rounds. Reported: accepted orders/s until sold out, CPU per order of the
server and of PostgreSQL, the ratios against the baseline and the targets (service >= 0.6x,
with Idempotency-Key >= 0.5x). Every run is checked against the database: units sold equal
accepted orders, stock never below zero, 0 oversell; the script exits non-zero otherwise.
The figures also go to ``test-results/bench/orders-hot.json``.

    make bench-orders-hot
    make bench-orders-hot ARGS="--rounds 3 --stock 3000"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from place_orders import (
    ADMIN,
    CpuMeter,
    Run,
    create_database,
    database_truth,
    drive,
    orders_service,
    wait_ready,
)

from benchmarks.report import write_result
from shopstack_common.identity import Identity
from shopstack_devstack.backends import start_servers
from shopstack_devstack.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def raw_sql_service(database_url: str, pool_size: int) -> Iterator[tuple[str, int]]:
    """benchmarks/raw_sql_order.py under one uvicorn worker, as the service is served."""
    port = free_port()
    env = os.environ | {"DATABASE_URL": database_url, "DB_POOL_SIZE": str(pool_size)}
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "benchmarks")]
    command += ["raw_sql_order:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    command += ["--loop", "uvloop", "--http", "httptools"]
    # The command is built here from fixed parts and this interpreter, no outside input.
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
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


def one_unit_orders(
    http: aiohttp.ClientSession, product_id: str, *, with_key: bool
) -> Callable[[int], Awaitable[int]]:
    async def send(_: int) -> int:
        headers = Identity(user_id=uuid.uuid4(), roles=frozenset({"customer"})).to_headers()
        if with_key:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        body = {"items": [{"product_id": product_id, "quantity": 1}]}
        async with http.post("/api/v1/orders", json=body, headers=headers) as response:
            await response.read()
            return response.status

    return send


SIDES = ("raw SQL", "service", "service, Idempotency-Key")


async def benchmark(
    service: str,
    raw: str,
    meters: dict[str, CpuMeter],
    database_url: str,
    args: argparse.Namespace,
) -> tuple[dict[str, list[Run]], list[str]]:
    limit = aiohttp.TCPConnector(limit=args.concurrency)
    raw_limit = aiohttp.TCPConnector(limit=args.concurrency)
    async with (
        aiohttp.ClientSession(service, connector=limit) as to_service,
        aiohttp.ClientSession(raw, connector=raw_limit) as to_raw,
    ):

        async def new_product(stock: int) -> str:
            body = {
                "sku": f"BENCH-{uuid.uuid4().hex[:12]}",
                "name": "Hot kettle",
                "price": 2599,
                "currency": "EUR",
                "stock": stock,
            }
            async with to_service.post("/api/v1/products", json=body, headers=ADMIN) as response:
                assert response.status == 201, await response.text()
                product_id: str = (await response.json())["id"]
                return product_id

        runs: dict[str, list[Run]] = {side: [] for side in SIDES}
        problems: list[str] = []
        # Warm up connections, pools, statement caches on both sides.
        for http, with_key in ((to_raw, False), (to_service, False), (to_service, True)):
            warm = await new_product(200)
            await drive(
                "warm-up", 300, args.concurrency, one_unit_orders(http, warm, with_key=with_key)
            )
        for _ in range(args.rounds):
            for side in SIDES:
                http = to_raw if side == "raw SQL" else to_service
                hot = await new_product(args.stock)
                run = await drive(
                    side,
                    args.requests,
                    args.concurrency,
                    one_unit_orders(http, hot, with_key=side.endswith("Key")),
                    meters["raw" if side == "raw SQL" else "service"],
                )
                runs[side].append(run)
                problems += check(run, database_url, hot, args.stock)
    return runs, problems


def check(run: Run, database_url: str, product_id: str, stock: int) -> list[str]:
    sold, left = database_truth(database_url, product_id)
    accepted = run.statuses[201]
    found = []
    if sold > stock or left < 0:
        found.append(f"{run.name}: oversold ({sold} sold of {stock}, {left} left)")
    if sold != accepted or sold + left != stock:
        found.append(f"{run.name}: {accepted} accepted, database says {sold} sold, {left} left")
    # 503 is the service shedding load (no pool connection in time): reported, not wrong.
    other = {s: n for s, n in run.statuses.items() if s not in {201, 409, 503}}
    if other:
        found.append(f"{run.name}: unexpected statuses {other}")
    return found


def median_rate(runs: list[Run]) -> float:
    return statistics.median(run.rate(201) for run in runs)


def cpu_per_order(runs: list[Run]) -> tuple[float, float]:
    orders = sum(sum(run.statuses.values()) for run in runs) or 1
    return (
        sum(run.cpu[0] for run in runs) / orders * 1000,
        sum(run.cpu[1] for run in runs) / orders * 1000,
    )


def report(runs: dict[str, list[Run]], args: argparse.Namespace) -> list[dict[str, Any]]:
    baseline = median_rate(runs["raw SQL"])
    targets = {"service": 0.6, "service, Idempotency-Key": 0.5}
    print()
    print(
        f"hot-product orders: {args.requests} requests per run, stock {args.stock}, "
        f"{args.concurrency} connections, {args.rounds} rounds, one uvicorn worker per side, "
        f"pool {args.pool_size}, {os.cpu_count()} CPUs shared by client, servers and PostgreSQL"
    )
    rows: list[dict[str, Any]] = []
    for side in SIDES:
        rate = median_rate(runs[side])
        server_ms, postgres_ms = cpu_per_order(runs[side])
        each = ", ".join(f"{run.rate(201):.0f}" for run in runs[side])
        shed = sum(run.statuses[503] for run in runs[side])
        if shed:
            each += f"; {shed} shed with 503"
        ratio = rate / baseline if baseline else 0.0
        target = targets.get(side)
        verdict = (
            ""
            if target is None
            else f"  target >= {target}x: {'met' if ratio >= target else 'MISSED'}"
        )
        print(
            f"  {side:<26} {rate:7.0f} orders/s  ({each})  {ratio:.2f}x raw SQL   "
            f"CPU per request: server {server_ms:.2f} ms, PostgreSQL {postgres_ms:.2f} ms{verdict}"
        )
        if target is not None:
            rows.append(
                {
                    "figure": f"orders, hot product ({side})",
                    "value": round(rate, 1),
                    "unit": "orders/s",
                    "baseline_name": "raw SQL transaction (asyncpg)",
                    "baseline": round(baseline, 1),
                    "ratio": round(ratio, 3),
                    "target": f">= {target}x",
                    "met": ratio >= target,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2400)
    parser.add_argument("--stock", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10, help="connections on each side")
    args = parser.parse_args()
    print("starting PostgreSQL and Redis (embedded) ...", flush=True)
    with start_servers("embedded") as servers:
        database_url = create_database(servers)
        postgres_port = int(servers.postgres_url.rsplit(":", 1)[1].split("/")[0])
        with (
            orders_service(database_url, servers.redis_url, 1, args.pool_size) as (service, pid),
            raw_sql_service(database_url, args.pool_size) as (raw, raw_pid),
        ):
            meters = {
                "service": CpuMeter(pid, postgres_port),
                "raw": CpuMeter(raw_pid, postgres_port),
            }
            runs, problems = asyncio.run(benchmark(service, raw, meters, database_url, args))
    rows = report(runs, args)
    write_result("orders-hot", rows)
    for problem in problems:
        print(f"  FAILED: {problem}")
    print()
    if problems:
        raise SystemExit("FAILED: oversold, stock and orders disagree, or unexpected statuses")


if __name__ == "__main__":
    main()
