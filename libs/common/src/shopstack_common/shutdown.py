"""Closing WebSockets with 1001 (going away) when the server is told to stop.

uvicorn stops on SIGTERM by failing every open WebSocket with 1012 and no chance for the app
to say more. ``GoingAway.install`` puts a handler in front of the server's own: it sets
``event`` (every connection then closes itself with 1001, so clients reconnect elsewhere
right away) and hands the signal on to the server once the connections are closed, or after
``grace_seconds`` at the latest. Without a server's handler (an app run in a test) it
installs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class GoingAway:
    def __init__(self, *, grace_seconds: float = 2.0) -> None:
        self.event = asyncio.Event()
        self.grace_seconds = grace_seconds
        self.open_connections = 0
        self._closed = asyncio.Event()
        self._closed.set()
        self._previous: Any = None
        self._hand_on: asyncio.Task[None] | None = None

    def install(self) -> None:
        # Signal handlers belong to the main thread; an app started elsewhere (a test's
        # worker thread) has no server of its own to stop.
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return
        self._previous = previous
        loop = asyncio.get_running_loop()

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self._begin, loop, lambda: previous(signum, frame))

        signal.signal(signal.SIGTERM, handler)

    def uninstall(self) -> None:
        if self._previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _begin(self, loop: asyncio.AbstractEventLoop, stop_server: Callable[[], None]) -> None:
        self.event.set()

        async def hand_on() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self.grace_seconds)
            stop_server()

        self._hand_on = loop.create_task(hand_on())

    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        """Count an open WebSocket, so the server waits for its close frame."""
        self.open_connections += 1
        self._closed.clear()
        try:
            yield
        finally:
            self.open_connections -= 1
            if self.open_connections == 0:
                self._closed.set()
