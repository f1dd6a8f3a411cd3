"""Per-upstream resilience: a circuit breaker, a retry budget and jittered backoff.

All of it lives in the process: each gateway replica (and each uvicorn worker) keeps its own
breaker and budget. That is deliberate: a replica's view of an upstream is what its own
requests saw, and no shared store sits in the path of every request.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable

from shopstack_gateway import metrics

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpenError(Exception):
    def __init__(self, upstream: str, retry_after: float) -> None:
        super().__init__(f"{upstream}: circuit open")
        self.upstream = upstream
        self.retry_after = retry_after


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``open_seconds`` it lets one
    probe request through (half-open). The probe's success closes it, its failure opens it again.

    A probe that never reports (its client went away) does not wedge the breaker: after another
    ``open_seconds`` the next request becomes the probe.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        open_seconds: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None
        metrics.CIRCUIT_STATE.labels(name).set(BreakerState.CLOSED)

    @property
    def state(self) -> BreakerState:
        return self._state

    def before_request(self) -> None:
        """Raise ``CircuitOpenError`` unless this request may go to the upstream."""
        if self._state is BreakerState.CLOSED:
            return
        now = self._clock()
        if self._state is BreakerState.OPEN:
            remaining = self._opened_at + self.open_seconds - now
            if remaining > 0:
                raise CircuitOpenError(self.name, remaining)
            self._set(BreakerState.HALF_OPEN)
        # Half-open: exactly one probe at a time.
        if self._probe_started_at is not None and now - self._probe_started_at < self.open_seconds:
            raise CircuitOpenError(self.name, self._probe_started_at + self.open_seconds - now)
        self._probe_started_at = now

    def record_success(self) -> None:
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            logger.info("circuit to %s closed: the upstream answered again", self.name)
            self._probe_started_at = None
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            logger.warning(
                "circuit to %s opened after %d consecutive failures; retrying in %gs",
                self.name,
                self._failures,
                self.open_seconds,
            )
            self._opened_at = self._clock()
            self._probe_started_at = None
            self._set(BreakerState.OPEN)
            metrics.CIRCUIT_OPENED.labels(self.name).inc()

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            metrics.CIRCUIT_TRANSITIONS.labels(self.name, state.name.lower()).inc()
        self._state = state
        metrics.CIRCUIT_STATE.labels(self.name).set(state)


class RetryBudget:
    """Caps retries to a share of the traffic, so retries cannot multiply an outage.

    Every request deposits ``ratio`` of a retry; time deposits ``min_per_second`` more; a retry
    withdraws one. The balance is capped, so a long quiet spell cannot bank a retry storm.
    """

    def __init__(self, *, ratio: float, min_per_second: float, clock: Clock = time.monotonic):
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.cap = max(1.0, 10 * min_per_second + 100 * ratio)
        self._clock = clock
        self._balance = self.cap
        self._updated = clock()

    def record_request(self) -> None:
        self._balance = min(self.cap, self._balance + self.ratio)

    def try_spend(self) -> bool:
        now = self._clock()
        self._balance = min(self.cap, self._balance + (now - self._updated) * self.min_per_second)
        self._updated = now
        if self._balance >= 1.0:
            self._balance -= 1.0
            return True
        return False


def backoff_seconds(retry: int, *, base: float, cap: float) -> float:
    """Full jitter (a uniform pick up to the exponential step), so retrying clients spread out."""
    return random.uniform(0, min(cap, base * 2 ** (retry - 1)))  # noqa: S311 - not for secrets
