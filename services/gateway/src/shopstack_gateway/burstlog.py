"""One log line per burst of failures, not one per request.

A dependency that fails on every request would otherwise flood the log at the request rate.
The first failure of a burst is logged with its error; while the failures go on, one reminder
with the count every ``remind_seconds``; the first success after them logs the recovery.
"""

from __future__ import annotations

import logging
import time

from shopstack_gateway.resilience import Clock


class BurstLogger:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        remind_seconds: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.remind_seconds = remind_seconds
        self._clock = clock
        self._failures = 0
        self._last_logged = 0.0

    @property
    def failing(self) -> bool:
        return self._failures > 0

    def failure(self, error: BaseException) -> None:
        now = self._clock()
        self._failures += 1
        if self._failures == 1:
            self.logger.warning("%s failing: %s", self.what, error or type(error).__name__)
            self._last_logged = now
        elif now - self._last_logged >= self.remind_seconds:
            self.logger.warning(
                "%s still failing (%d failures so far): %s", self.what, self._failures, error
            )
            self._last_logged = now

    def success(self) -> None:
        if self._failures:
            self.logger.info("%s recovered after %d failures", self.what, self._failures)
            self._failures = 0
