"""Logging a recurring failure once per burst instead of once per request.

When Redis goes away every request notices; a log line for each would drown the log and
the failure would still be one event. ``BurstLogger`` writes the first occurrence of a
key, stays quiet while it keeps recurring, and after a quiet period writes the next one
with the number of occurrences it left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Burst:
    logged_at: float
    suppressed: int = 0


class BurstLogger:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        quiet_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._quiet_seconds = quiet_seconds
        self._clock = clock
        self._bursts: dict[str, _Burst] = {}
        self._lock = threading.Lock()

    def log(
        self,
        level: int,
        key: str,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``quiet_seconds`` ago.
        Returns whether a line was written."""
        now = self._clock()
        with self._lock:
            burst = self._bursts.get(key)
            if burst is not None and now - burst.logged_at < self._quiet_seconds:
                burst.suppressed += 1
                return False
            suppressed = burst.suppressed if burst is not None else 0
            self._bursts[key] = _Burst(logged_at=now)
        self._logger.log(
            level,
            message,
            *args,
            exc_info=exc_info,
            extra={"burst_key": key, "suppressed_since_last": suppressed},
        )
        return True

    def warning(
        self, key: str, message: str, *args: object, exc_info: BaseException | None = None
    ) -> bool:
        return self.log(logging.WARNING, key, message, *args, exc_info=exc_info)
