import json
import logging
import logging.config

import pytest

from shopstack_common.context import RequestContext, request_context_var
from shopstack_common.logs import (
    BurstLogger,
    ContextFilter,
    configure_logging,
    gunicorn_logconfig_dict,
    json_formatter,
)


def json_logger(name: str, service: str) -> tuple[logging.Logger, logging.Handler]:
    """A logger writing the services' JSON lines to stderr."""
    logger = logging.getLogger(name)
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter(service))
    logger.addHandler(handler)
    logger.propagate = False
    return logger, handler


def test_log_lines_are_json_with_request_context(capsys: pytest.CaptureFixture[str]) -> None:
    logger, handler = json_logger("test.logs", "users")
    token = request_context_var.set(RequestContext(request_id="r-1", fields={"user_id": "u-1"}))
    try:
        logger.warning("hello %s", "world", extra={"order_id": 7})
    finally:
        request_context_var.reset(token)
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip())
    assert line["message"] == "hello world"
    assert line["level"] == "WARNING"
    assert line["service"] == "users"
    assert line["request_id"] == "r-1"
    assert line["user_id"] == "u-1"
    assert line["order_id"] == 7
    assert line["time"].endswith("Z")


def test_uvicorns_coloured_copy_of_the_message_is_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger, handler = json_logger("test.logs.uvicorn", "gateway")
    try:
        # What uvicorn logs at start-up: the message, and a copy with ANSI colours.
        logger.warning(
            "Uvicorn running on %s", "http://127.0.0.1:1",
            extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m"},
        )  # fmt: skip
    finally:
        logger.removeHandler(handler)
    out = capsys.readouterr().err
    assert "color_message" not in json.loads(out)
    assert "\\u001b" not in out
    assert "\x1b" not in out


def test_alembic_says_only_the_migrations_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("orders")
    try:
        logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "x.y")
        migration = logging.getLogger("alembic.runtime.migration")
        migration.info("Context impl %s.", "PostgresqlImpl")
        migration.info("Will assume %s DDL.", "transactional")
        migration.info("Running %s", "upgrade  -> 0001, products")
        out = capsys.readouterr().out
    finally:
        logging.getLogger().handlers[:] = []
    assert [json.loads(line)["message"] for line in out.splitlines()] == [
        "Running upgrade  -> 0001, products"
    ]


def test_gunicorn_workers_do_not_name_alembics_plugins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.config.dictConfig(gunicorn_logconfig_dict("users"))
    try:
        logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "x.y")
        logging.getLogger("shopstack_users").info("started")
        out = capsys.readouterr().out
    finally:
        logging.getLogger().handlers[:] = []
    assert [json.loads(line)["message"] for line in out.splitlines()] == ["started"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_logger_writes_one_line_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    burst = BurstLogger(logging.getLogger("test.burst"), quiet_seconds=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.burst"):
        written = [burst.warning("redis", "redis down: %s", "refused") for _ in range(5)]
        clock.now += 59.9
        written.append(burst.warning("redis", "redis down: %s", "refused"))
        clock.now += 0.2
        written.append(burst.warning("redis", "redis down: %s", "refused"))
    assert written == [True, False, False, False, False, False, True]
    assert [r.getMessage() for r in caplog.records] == ["redis down: refused"] * 2
    assert [getattr(r, "suppressed_since_last", None) for r in caplog.records] == [0, 5]


def test_burst_logger_keys_are_independent(caplog: pytest.LogCaptureFixture) -> None:
    burst = BurstLogger(logging.getLogger("test.burst"), quiet_seconds=60, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger="test.burst"):
        assert burst.warning("redis", "redis down")
        assert burst.warning("postgres", "postgres slow")
        assert not burst.warning("redis", "redis down")
    assert [getattr(r, "burst_key", None) for r in caplog.records] == ["redis", "postgres"]


def test_burst_logger_says_when_a_burst_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    burst = BurstLogger(logging.getLogger("test.burst"), quiet_seconds=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.burst"):
        assert not burst.recovered("redis", "redis back")  # no burst, no line
        for _ in range(100):
            burst.warning("redis", "redis down")
            clock.now += 0.1
        clock.now += 60
        burst.warning("redis", "redis down")  # a reminder, with the tally
        assert burst.recovered("redis", "redis back")
        assert not burst.recovered("redis", "redis back")
        assert burst.warning("redis", "redis down")  # a new burst is logged at once
    lines = [(r.levelname, r.getMessage(), getattr(r, "occurrences", None)) for r in caplog.records]
    assert lines == [
        ("WARNING", "redis down", None),
        ("WARNING", "redis down", None),
        ("INFO", "redis back", 101),
        ("WARNING", "redis down", None),
    ]
    assert caplog.records[1].suppressed_since_last == 99  # type: ignore[attr-defined]
