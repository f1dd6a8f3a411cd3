"""Child processes under one supervisor: started in order, their output interleaved, and
every one of them (with its own children) stopped when the supervisor stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shopstack_devstack.logview import LogView


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: int | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 20.0
    process: subprocess.Popen[str] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    _pump: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts children each in its own process group, so stopping one stops its workers too.

    A pid file per child lets the next run find and stop anything a killed supervisor left.
    """

    def __init__(self, view: LogView, run_dir: Path) -> None:
        self.view = view
        self.run_dir = run_dir
        self.children: list[Child] = []
        self._stopping = threading.Event()

    def reap_leftovers(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for pid_file in self.run_dir.glob("*.pid"):
            try:
                pgid = int(pid_file.read_text())
            except ValueError:
                pid_file.unlink()
                continue
            if _group_alive(pgid):
                self.view.say(
                    f"stopping {pid_file.stem} left running by an earlier run (pgid {pgid})"
                )
                _stop_group(pgid, signal.SIGTERM, 10.0)
            pid_file.unlink(missing_ok=True)

    def start(self, child: Child) -> Child:
        self.view.register(child.name)
        env = {**os.environ, **child.env, "PYTHONUNBUFFERED": "1"}
        child.process = subprocess.Popen(  # noqa: S603 - argv built by this module
            list(child.argv),
            cwd=child.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
            user=child.user,
        )
        (self.run_dir / f"{child.name}.pid").write_text(str(child.process.pid))
        child._pump = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child._pump.start()
        self.children.append(child)
        return child

    def run_to_completion(self, child: Child, timeout: float = 300.0) -> int:
        """Run a one-off command (a migration) with its output in the stream."""
        self.start(child)
        assert child.process is not None
        try:
            code = child.process.wait(timeout)
        finally:
            self.children.remove(child)
            (self.run_dir / f"{child.name}.pid").unlink(missing_ok=True)
        if child._pump:
            child._pump.join(5)
        if child.process.stdout is not None:
            child.process.stdout.close()
        return code

    def _pump(self, child: Child) -> None:
        assert child.process is not None
        assert child.process.stdout is not None
        for line in child.process.stdout:
            child.tail.append(line)
            self.view.line(child.name, line)

    def first_dead(self) -> Child | None:
        for child in self.children:
            if not child.alive:
                return child
        return None

    def stop_all(self) -> None:
        """Stop in reverse start order (the edge first, the databases last)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for child in reversed(self.children):
            if child.process is None:
                continue
            if child.alive:
                self.view.say(f"stopping {child.name}")
            _stop_group(
                child.process.pid, child.stop_signal, child.stop_timeout, child.process.poll
            )
            if child._pump:
                child._pump.join(2)
            if child.process.stdout is not None:
                child.process.stdout.close()
            (self.run_dir / f"{child.name}.pid").unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(
    pgid: int, sig: signal.Signals, timeout: float, reap: Callable[[], object] | None = None
) -> None:
    """Signal a whole process group, then kill what is left after ``timeout``.

    ``reap`` collects the group leader when it is our own child, so it does not linger as a
    zombie that still counts as a member of the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not _group_alive(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    while reap is not None and time.monotonic() < deadline + 5 and _group_alive(pgid):
        reap()
        time.sleep(0.05)
