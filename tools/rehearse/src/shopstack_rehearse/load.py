"""A bounded request loop for day-2 operations: what a rollout or a killed pod costs the
clients, counted as requests sent and failed."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import httpx


class Load:
    """GETs of ``paths`` in turn, one after another on one keep-alive client, until stopped
    or ``limit`` requests were sent. A request fails when it gets no answer or a status
    other than 200; each failure is kept with what it got."""

    def __init__(
        self,
        url: str,
        paths: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        limit: int = 20_000,
        pause: float = 0.01,
        timeout: float = 10,
    ) -> None:
        if not paths:
            raise ValueError("a load needs at least one path")
        self.url, self.paths, self.limit, self.pause = url, list(paths), limit, pause
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.sent = self.failed = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="load", daemon=True)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=self.timeout) as client:
            for path in itertools.cycle(self.paths):
                if self._stop.is_set() or self.sent >= self.limit:
                    return
                self.sent += 1
                try:
                    answer = client.get(path)
                    if answer.status_code != 200:
                        self.failed += 1
                        self.failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")
                except httpx.HTTPError as error:
                    self.failed += 1
                    self.failures.append(f"{path}: {error!r}")
                time.sleep(self.pause)

    def summary(self) -> str:
        return f"{self.sent} requests sent, {self.failed} failed"

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
