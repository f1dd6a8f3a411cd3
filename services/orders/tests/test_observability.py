import logging

import pytest

from shopstack_orders.observability import BurstLogger


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def records() -> list[logging.LogRecord]:
    return []


@pytest.fixture
def burst(records: list[logging.LogRecord]) -> tuple[BurstLogger, Clock]:
    logger = logging.getLogger("test.burst")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.handlers[:] = [handler]
    clock = Clock()
    return BurstLogger(logger, quiet_seconds=30, clock=clock), clock


def test_a_burst_is_logged_once_then_counted(
    burst: tuple[BurstLogger, Clock], records: list[logging.LogRecord]
) -> None:
    bursts, clock = burst
    assert bursts.warning("redis", "Redis down: %s", "refused") is True
    for _ in range(4):
        clock.now += 5
        assert bursts.warning("redis", "Redis down: %s", "refused") is False
    assert [r.getMessage() for r in records] == ["Redis down: refused"]
    assert records[0].suppressed_since_last == 0  # type: ignore[attr-defined]

    clock.now += 30  # quiet long enough: the next one is a new burst, with the tally
    assert bursts.warning("redis", "Redis down: %s", "timeout") is True
    assert len(records) == 2
    assert records[1].suppressed_since_last == 4  # type: ignore[attr-defined]
    assert records[1].levelno == logging.WARNING


def test_keys_burst_independently(
    burst: tuple[BurstLogger, Clock], records: list[logging.LogRecord]
) -> None:
    bursts, _ = burst
    bursts.warning("redis", "one")
    bursts.warning("postgres", "two")
    bursts.warning("redis", "three")
    assert [r.getMessage() for r in records] == ["one", "two"]
