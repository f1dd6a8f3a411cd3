"""JSON log lines on stdout, each carrying the service, request id and trace id."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from shopstack_common.context import request_context_var


class ContextFilter(logging.Filter):
    """Stamps every record with the request and trace it belongs to."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn adds a copy of the message with terminal colours, for its own console.
        record.__dict__.pop("color_message", None)
        record.service = self.service
        context = request_context_var.get()
        record.request_id = context.request_id if context else None
        user_id = context.fields.get("user_id") if context else None
        if user_id and not hasattr(record, "user_id"):
            record.user_id = user_id
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        else:
            record.trace_id = None
        return True


def json_formatter() -> logging.Formatter:
    formatter = JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%SZ",
    )
    formatter.converter = time.gmtime  # timestamps in UTC, as the trailing Z says
    return formatter


class MigrationsApplied(logging.Filter):
    """Of Alembic's chatter, only the line per migration it runs ("Running upgrade a -> b")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or str(record.msg).startswith("Running ")


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger (and the servers' loggers) to one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Servers install their own handlers; let their records reach ours instead.
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error", "alembic"):
        server_logger = logging.getLogger(name)
        server_logger.handlers[:] = []
        server_logger.propagate = True
    # Access lines come from our own middleware, with the route template and request id.
    for name in ("uvicorn.access", "gunicorn.access"):
        access_logger = logging.getLogger(name)
        access_logger.handlers[:] = []
        access_logger.propagate = False
        access_logger.disabled = True
    # Alembic names every plugin it sets up and its dialect at INFO on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    migration_logger = logging.getLogger("alembic.runtime.migration")
    migration_logger.filters[:] = [MigrationsApplied()]


def gunicorn_logconfig_dict(service: str, level: str = "INFO") -> dict[str, Any]:
    """A logging dictConfig for gunicorn's master and workers, in the same JSON shape."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "service": service}},
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": [], "propagate": True, "level": level.upper()},
            "gunicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
            # A worker that imports Alembic would name its plugins at every start.
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    }


class BurstLogger:
    """Logs a recurring condition (Redis down, an upstream timing out) once per burst.

    The first occurrence of ``key`` is logged; later ones are only counted until
    ``quiet_seconds`` have passed since the last line, and the next line says how many were
    left out. A dependency that fails on every request thus costs one log line every
    ``quiet_seconds`` per process instead of one per request. ``recovered`` ends a burst with
    one line saying how many occurrences it had. Thread-safe; per process.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        quiet_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (when its last line was written, occurrences left out since, in the burst)
        self._state: dict[str, tuple[float, int, int]] = {}

    def warning(
        self,
        key: str,
        message: str,
        *args: Any,
        exc_info: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``quiet_seconds`` ago.
        Returns whether a line was written."""
        now = self._clock()
        with self._lock:
            last = self._state.get(key)
            total = last[2] + 1 if last is not None else 1
            if last is not None and now - last[0] < self.quiet_seconds:
                self._state[key] = (last[0], last[1] + 1, total)
                return False
            suppressed = last[1] if last is not None else 0
            self._state[key] = (now, 0, total)
        fields = {**(extra or {}), "burst_key": key, "suppressed_since_last": suppressed}
        self.logger.warning(message, *args, exc_info=exc_info, extra=fields)
        return True

    def recovered(self, key: str, message: str, *args: Any) -> bool:
        """End the burst of ``key``, if one is going on, with one INFO line carrying its
        ``occurrences``. Cheap when there is none: callers may call it on every success."""
        if key not in self._state:
            return False
        with self._lock:
            burst = self._state.pop(key, None)
        if burst is None:
            return False
        self.logger.info(message, *args, extra={"burst_key": key, "occurrences": burst[2]})
        return True
