"""Order event WebSockets at scale: N connections held on one gateway worker and one orders
worker, each receiving every event. Not a test: it prints figures.

It starts the local platform (what `make up` runs, on free ports, its own data directory),
signs in the development administrator (who sees every event), opens N WebSockets to the
gateway with a ticket each, then publishes events to `orders:events` as the relay would, each
carrying the time it was added, and measures on every connection the time from XADD to the
message arriving (so the relay's poll interval, RELAY_POLL_INTERVAL_SECONDS, is not included).
Memory per connection is the growth of each server process's resident set from before the
connections to after them, divided by N. The baseline, measured in the same run, is one
connection.

    make bench-websocket                               # 1,000 connections
    ARGS="--connections 2000 --events 30" make bench-websocket
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from shopstack_devstack.local_platform import LocalPlatform
from shopstack_devstack.ports import free_port

ADMIN = ("admin@shopstack.local", "shopstack-dev-admin")
PORTS = ("nginx", "gateway", "users", "orders", "orders_relay", "postgres", "redis")


def serving_pid(platform: LocalPlatform, service: str) -> int:
    """The service's process, from the pid file `make up` keeps for it (one worker: the
    server itself serves)."""
    record = json.loads((platform.data_dir / "run" / f"{service}.pid").read_text())
    return int(record["pgid"])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def open_connections(
    http: httpx.AsyncClient, gateway: int, token: str, count: int
) -> list[ClientConnection]:
    limit = asyncio.Semaphore(10)

    async def one() -> ClientConnection:
        async with limit:
            issued = await http.post(
                "/api/v1/orders/events/ticket", headers={"Authorization": f"Bearer {token}"}
            )
            issued.raise_for_status()
            ticket = issued.json()["ticket"]
            try:
                return await connect(
                    f"ws://127.0.0.1:{gateway}/api/v1/orders/events?ticket={ticket}",
                    open_timeout=60,
                    max_queue=None,
                )
            except InvalidStatus as refused:
                body = (refused.response.body or b"").decode(errors="replace")
                raise SystemExit(f"refused {refused.response.status_code}: {body}") from None

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def deliveries(
    store: aioredis.Redis, sockets: list[ClientConnection], events: int, spacing: float
) -> list[float]:
    """Publish ``events``; the latency of every arrival on every connection, in ms."""
    latencies: list[float] = []
    ids: set[str] = set()

    async def listen(socket_: ClientConnection) -> None:
        got = 0
        while got < events:
            message = json.loads(await socket_.recv())
            if message["id"] in ids:
                latencies.append((time.time() - message["payload"]["sent"]) * 1000)
                got += 1

    listeners = [asyncio.create_task(listen(s)) for s in sockets]
    await asyncio.sleep(0.5)
    for number in range(events):
        event_id = str(uuid.uuid4())
        ids.add(event_id)
        await store.xadd(
            "orders:events",
            {
                "id": event_id,
                "type": "stock.changed",
                "subject": "product",
                "subject_id": str(uuid.uuid4()),
                "version": str(number + 1),
                "user_id": "",
                "occurred_at": "2026-12-02T00:00:00+00:00",
                "payload": json.dumps({"sent": time.time(), "stock": number}),
            },
        )
        await asyncio.sleep(spacing)
    await asyncio.wait_for(asyncio.gather(*listeners), 120)
    return latencies


async def measure(platform: LocalPlatform, connections: int, events: int, spacing: float) -> None:
    gateway = platform.ports["gateway"]
    pids = {name: serving_pid(platform, name) for name in ("gateway", "orders")}
    store = aioredis.Redis(port=platform.ports["redis"])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway}", timeout=60) as http:
        signed = await http.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]},
        )
        signed.raise_for_status()
        token = signed.json()["access_token"]

        baseline_sockets = await open_connections(http, gateway, token, 1)
        baseline = await deliveries(store, baseline_sockets, events, spacing)
        for socket_ in baseline_sockets:
            await socket_.close()
        await asyncio.sleep(1)

        before = {name: rss_mib(pid) for name, pid in pids.items()}
        started = time.monotonic()
        sockets = await open_connections(http, gateway, token, connections)
        opened_in = time.monotonic() - started
        await asyncio.sleep(2)
        after = {name: rss_mib(pid) for name, pid in pids.items()}
        latencies = await deliveries(store, sockets, events, spacing)
        for socket_ in sockets:
            await socket_.close()
    await store.aclose()

    print(
        f"{connections} WebSockets on 1 gateway worker + 1 orders worker, "
        f"opened in {opened_in:.1f} s"
    )
    for name in pids:
        grown = after[name] - before[name]
        print(
            f"  {name:8} RSS {before[name]:7.1f} -> {after[name]:7.1f} MiB: "
            f"{grown * 1024 / connections:6.1f} KiB per connection"
        )
    print(f"  delivery XADD -> client, {events} events x {connections} connections:")
    print(
        f"    at {connections:5}: p50 {percentile(latencies, 0.5):7.1f} ms  "
        f"p99 {percentile(latencies, 0.99):7.1f} ms  ({len(latencies)} deliveries)"
    )
    print(
        f"    at     1: p50 {statistics.median(baseline):7.1f} ms  "
        f"p99 {percentile(baseline, 0.99):7.1f} ms  (baseline, same run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopstack-bench-ws-") as root:
        platform = LocalPlatform(
            data_dir=Path(root) / "devstack",
            ports={name: free_port() for name in PORTS},
            extra_env={
                # What is measured is holding connections, not the limits in front of them.
                "GATEWAY_RATE_LIMIT__ENABLED": "false",
                "EVENTS_WS_MAX_CONNECTIONS_PER_USER": str(args.connections + 10),
            },
        )
        platform.start()
        try:
            asyncio.run(measure(platform, args.connections, args.events, args.spacing))
        except SystemExit:
            print("".join(line for line in platform.output if "slot" in line)[-3000:])
            raise
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
