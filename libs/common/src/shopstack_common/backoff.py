"""Leaving a dependency the service can do without alone for a moment after it failed.

Redis is such a dependency for every part of the platform (the gateway's rate limits, the
orders product cache, the users cache and sign-in throttle). When it is down, refusing or
frozen, each call would wait out its timeout before the caller goes on without it, adding
that timeout to every request for as long as the outage lasts. After a failure, callers ask
``skipping`` and go straight to their fallback for ``seconds``; the first call after that
tries again, and its failure starts the next window.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class BackOff:
    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._until = 0.0

    @property
    def skipping(self) -> bool:
        """Whether a failure was recent enough that callers should not try now."""
        return self._until > 0.0 and self._clock() < self._until

    def failed(self) -> None:
        self._until = self._clock() + self.seconds

    def succeeded(self) -> None:
        self._until = 0.0
