"""Fixtures for the outbox and the relay: outbox rows, the stream as a consumer reads it,
relays run as their own processes, and a Redis of the test's own that it can stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row

from shopstack_devstack.ports import free_port
from shopstack_devstack.redis_server import EmbeddedRedis

STREAM = "orders:events"


def outbox_rows(database_url: str) -> list[dict[str, Any]]:
    """Every outbox row in publication order."""
    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        return connection.execute("SELECT * FROM orders.outbox_events ORDER BY seq").fetchall()


def stream_entries(redis_url: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [fields for _id, fields in client.xrange(STREAM)]
    finally:
        client.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` if it never does (a bound on a
    hang, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Delivery:
    events: list[dict[str, str]]  # the first copy of each event, in stream order
    duplicates: int


def delivered_once_in_order(database_url: str, redis_url: str) -> Delivery:
    """What a consumer dropping duplicates by id gets, checked against the outbox: every
    event exactly once, and each order's and product's events in version order."""
    rows = outbox_rows(database_url)
    entries = stream_entries(redis_url)
    seen: set[str] = set()
    first: list[dict[str, str]] = []
    for entry in entries:
        if entry["id"] not in seen:
            seen.add(entry["id"])
            first.append(entry)
    assert [entry["id"] for entry in first] == [str(row["id"]) for row in rows]
    assert all(row["published_at"] is not None for row in rows)
    versions: dict[str, list[int]] = {}
    for entry in first:
        versions.setdefault(entry["subject_id"], []).append(int(entry["version"]))
    for subject, numbers in versions.items():
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), subject
    return Delivery(events=first, duplicates=len(entries) - len(first))


class RelayProcess:
    def __init__(self, process: subprocess.Popen[bytes], metrics_port: int) -> None:
        self.process = process
        self.metrics_port = metrics_port

    def metric(self, name: str) -> float | None:
        """A sample of the relay's /metrics; None while it does not answer."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        return None

    def is_leader(self) -> bool:
        return self.metric("shopstack_orders_relay_leader") == 1.0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


class RelayStarter(Protocol):
    def __call__(self, *, redis_url: str, **env: str) -> RelayProcess: ...


@pytest.fixture
def start_relay(database_url: str, tmp_path: Path) -> Iterator[RelayStarter]:
    """``shopstack-orders relay`` as its own process, the way the chart runs it."""
    started: list[RelayProcess] = []

    def start(*, redis_url: str, **env: str) -> RelayProcess:
        port = free_port()
        environment = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PORT": str(port),
            "RELAY_RETRY_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
        } | env
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # The child keeps its own descriptor of the log; ours is closed at once.
        with (tmp_path / f"relay-{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shopstack_orders", "relay"],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        relay = RelayProcess(process, port)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        if relay.process.poll() is None:
            relay.kill()


class OwnRedis:
    """A Redis server of this test's own, which it may stop and start again (same port,
    same data)."""

    def __init__(self, root: Path) -> None:
        self.server = EmbeddedRedis(root, free_port(), durable=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.server.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.server.wait_ready(
            alive=lambda: self.process is not None and self.process.poll() is None
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class Relays:
    """What a relay test works with: the outbox's database, a Redis it may stop, and a way
    to start relays on them."""

    database_url: str
    redis: OwnRedis
    start: RelayStarter


@pytest.fixture
def relays(database_url: str, own_redis: OwnRedis, start_relay: RelayStarter) -> Relays:
    return Relays(database_url, own_redis, start_relay)
