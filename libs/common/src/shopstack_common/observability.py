"""The access log line, shared by the ASGI and WSGI request hooks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

access_logger = logging.getLogger("shopstack.access")

# Probes and scrapes arrive every few seconds; they stay out of the INFO stream.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def log_access(
    *,
    method: str,
    route: str,
    path: str,
    status: int,
    duration: float,
    fields: Mapping[str, Any],
) -> None:
    level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
    if not access_logger.isEnabledFor(level):
        return
    access_logger.log(
        level,
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            **fields,
        },
    )
