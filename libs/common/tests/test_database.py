"""The instrumented pool on a real SQLAlchemy engine (SQLite files: the pool is the same class
whatever the database): its gauges follow every checkout and checkin, overflow is counted
beyond the pool's size, and a checkout that times out is counted and still raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shopstack_common.database import InstrumentedQueuePool


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def gauges() -> tuple[float, float, float]:
    return (
        sample("shopstack_db_pool_connections_in_use"),
        sample("shopstack_db_pool_connections_idle"),
        sample("shopstack_db_pool_connections_overflow"),
    )


def engine(tmp_path: Path, *, pool_size: int, max_overflow: int) -> Engine:
    return create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}",
        poolclass=InstrumentedQueuePool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=0.05,
    )


def test_gauges_follow_checkouts_overflow_and_checkins(tmp_path: Path) -> None:
    db = engine(tmp_path, pool_size=1, max_overflow=1)
    assert sample("shopstack_db_pool_connections_limit") == 2
    assert gauges() == (0, 0, 0)
    waits = sample("shopstack_db_pool_wait_seconds_count")
    with db.connect() as first:
        first.execute(text("SELECT 1"))
        assert gauges() == (1, 0, 0)
        with db.connect() as second:
            second.execute(text("SELECT 1"))
            assert gauges() == (2, 0, 1)  # beyond pool_size: overflow
        # Returned while the pool has room: kept idle, still one beyond pool_size.
        assert gauges() == (1, 1, 1)
    # The pool is full again, so the last one back is closed: nothing beyond pool_size.
    assert gauges() == (0, 1, 0)
    assert sample("shopstack_db_pool_wait_seconds_count") == waits + 2
    db.dispose()
    assert gauges() == (0, 0, 0)


def test_a_checkout_that_times_out_is_counted(tmp_path: Path) -> None:
    db = engine(tmp_path, pool_size=1, max_overflow=0)
    timeouts = sample("shopstack_db_pool_timeouts_total")
    with db.connect(), pytest.raises(PoolTimeoutError), db.connect():
        pass
    assert sample("shopstack_db_pool_timeouts_total") == timeouts + 1
    db.dispose()
