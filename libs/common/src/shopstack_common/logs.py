"""JSON log lines on stdout, each carrying the service, request id and trace id."""

from __future__ import annotations

import logging
import sys
import time
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
        },
    }
