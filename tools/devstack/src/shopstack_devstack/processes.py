"""Child processes under one supervisor: started in order, their output interleaved, and
every one of them (with its own children) stopped when the supervisor stops.

``Supervisor.run`` is the whole life of `make up`: the start-up steps in order, then watching,
then the stop, in reverse order, on SIGINT, SIGTERM or SIGHUP. A child that dies while the
platform is up is started again with back-off, as a cluster restarts a crashed container; one
that dies during start-up fails the start-up. A signal
only marks the stop as asked for: the handler takes no lock and writes nothing, because it
runs between any two bytecodes of the main thread, also while that thread holds the log's lock.
Every wait of the start-up looks at the mark, so a stop asked for during start-up is acted on
at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from shopstack_devstack.logview import LogView

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The exit code of a run stopped before it was up, as a shell reports a SIGINT.
INTERRUPTED = 130


class StartupError(RuntimeError):
    """A part could not start; the message says which and why."""


class Interrupted(Exception):  # noqa: N818 - a stop asked for, not a fault
    """A stop signal arrived; raised in the main thread by whatever was waiting."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """The signals received so far. ``handle`` is the signal handler: it appends to a list,
    which takes no lock, so it cannot wait on anything the interrupted code holds (a
    ``threading.Lock``, or the one inside ``threading.Event``)."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    @property
    def asked(self) -> bool:
        return bool(self.received)

    def check(self) -> None:
        if self.received:
            raise Interrupted(self.received[0])

    def sleep(self, seconds: float) -> None:
        """Sleep, in slices short enough that a stop is acted on at once."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def install(self) -> None:
        """Handle the stop signals from now on, also after the stop: a second Ctrl-C (every
        stop through uv brings two) must not end the process with a KeyboardInterrupt."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.handle)


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before starting a dead child again: ``first_delay``, doubled with every
    death that follows quickly on the last, up to ``max_delay`` (the kubelet's CrashLoopBackOff,
    shorter). A child that ran for ``healthy_after`` seconds starts from ``first_delay`` again."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    healthy_after: float = 60.0

    def delay(self, quick_deaths: int) -> float:
        return float(min(self.first_delay * 2 ** max(quick_deaths - 1, 0), self.max_delay))


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
    started_at: float = 0.0
    order: int = 0
    restarts: int = 0
    # Deaths in a row, each soon after its start; the back-off grows with them.
    quick_deaths: int = 0
    # When a dead child is due to start again (monotonic); None while it runs.
    restart_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Wait:
    """What ``Supervisor.wait_all`` polls: ``child`` is ready when ``ready()`` says so; then
    ``then`` runs (to start what depends on it)."""

    child: Child
    ready: Callable[[], bool]
    what: str
    then: Callable[[], None] = lambda: None
    # Seconds from when the wait was added; None: the timeout wait_all is given.
    timeout: float | None = None


class Supervisor:
    """Starts children each in its own process group, so stopping one stops its workers too.

    A pid file per child lets the next run find and stop anything a killed supervisor left.
    """

    def __init__(
        self, view: LogView, run_dir: Path, *, restarts: RestartPolicy | None = None
    ) -> None:
        self.view = view
        self.run_dir = run_dir
        self.restarts = restarts or RestartPolicy()
        self.children: list[Child] = []
        self.stop = StopRequest()
        self._started = 0
        self._stopping = False

    def run(self, steps: Sequence[Callable[[], None]], *, ready: Callable[[], None]) -> int:
        """Run ``steps`` in order, then ``ready``, then watch until a stop signal (exit 0),
        restarting children that die meanwhile. A stop during start-up exits 130, a failed
        step 1. Whatever happened, every child is stopped, in reverse start order, before this
        returns."""
        up = False
        self.stop.install()
        try:
            for step in steps:
                self.stop.check()
                step()
            self.stop.check()
            ready()
            up = True
            while True:
                self.stop.sleep(0.1)
                self.restart_dead()
        except Interrupted as stop:
            self.view.say(f"received {stop}, stopping")
            return 0 if up else INTERRUPTED
        except (StartupError, RuntimeError, OSError) as error:
            # A server that exits while starting (a port taken meanwhile, a broken data
            # dir) is reported in one line; its own log lines above say the rest.
            self.view.say(f"could not start: {error}")
            return 1
        finally:
            self.stop_all()
            self.view.say("stopped")

    def reap_leftovers(self) -> None:
        """Stop what an earlier run left (its supervisor was killed): in reverse start order,
        each with its own stop signal, so the services go before the databases they use."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        found: list[tuple[_PidRecord, Path]] = []
        for pid_file in self.run_dir.glob("*.pid"):
            record = _PidRecord.read(pid_file)
            if record is None:
                pid_file.unlink()
                continue
            found.append((record, pid_file))
        for record, pid_file in sorted(found, key=lambda item: item[0].order, reverse=True):
            if _group_alive(record.pgid):
                self.view.say(
                    f"stopping {pid_file.stem} left running by an earlier run (pgid {record.pgid})"
                )
                _stop_group(record.pgid, record.stop_signal, record.stop_timeout)
            pid_file.unlink(missing_ok=True)

    def restart_dead(self) -> None:
        """One look at the children: schedule each newly dead one for a restart after its
        back-off, and start those whose time has come. The rest of its process group (a
        server's workers) is stopped first, so the new one finds its port free."""
        now = time.monotonic()
        for child in self.children:
            if child.alive or child.process is None:
                continue
            if child.restart_at is None:
                ran = now - child.started_at
                child.quick_deaths = (
                    1 if ran >= self.restarts.healthy_after else child.quick_deaths + 1
                )
                delay = self.restarts.delay(child.quick_deaths)
                child.restart_at = now + delay
                self.view.say(
                    f"{child.name} exited (code {child.process.returncode}); restarting in "
                    f"{delay:g}s (restart {child.restarts + 1})"
                )
                _stop_group(child.process.pid, signal.SIGKILL, 5, child.process.poll)
            elif now >= child.restart_at:
                self.stop.check()
                child.restarts += 1
                child.restart_at = None
                if child._pump:
                    child._pump.join(2)
                if child.process.stdout is not None:
                    child.process.stdout.close()
                self._spawn(child)
                self.view.say(f"restarted {child.name} (restart {child.restarts})")

    def start(self, child: Child) -> Child:
        self.stop.check()
        self.view.register(child.name)
        self._spawn(child)
        # Known to stop_all before anything else can happen, a signal included.
        self.children.append(child)
        return child

    def _spawn(self, child: Child) -> None:
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
        child.started_at = time.monotonic()
        if not child.order:
            # A restart keeps its place: leftovers are stopped services first, databases last.
            self._started += 1
            child.order = self._started
        _PidRecord(child.process.pid, child.order, child.stop_signal, child.stop_timeout).write(
            self._pid_file(child)
        )
        child._pump = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child._pump.start()

    def run_to_completion(self, child: Child, timeout: float = 300.0) -> int:
        """Run a one-off command (a migration) with its output in the stream. A stop asked
        for meanwhile raises ``Interrupted`` at once; the command is then stopped with the
        rest."""
        self.start(child)
        assert child.process is not None
        deadline = time.monotonic() + timeout
        while (code := self.finished(child)) is None:
            if time.monotonic() > deadline:
                raise StartupError(f"{child.name} did not finish in {timeout:.0f}s")
            self.stop.sleep(0.05)
        return code

    def finished(self, child: Child) -> int | None:
        """The exit code of a one-off ``child`` once it has exited, its pid file and output
        tidied away (it is not restarted); None while it runs."""
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            return None
        if child in self.children:
            self.children.remove(child)
            self._pid_file(child).unlink(missing_ok=True)
            if child._pump:
                child._pump.join(5)
            if child.process.stdout is not None:
                child.process.stdout.close()
        return code

    def wait_until(
        self, ready: Callable[[], bool], *, child: Child, timeout: float, what: str
    ) -> None:
        """Poll ``ready`` until it is true; fail when ``child`` exits or time runs out, stop
        waiting at once when a stop is asked for."""
        self.wait_all([Wait(child, ready, what)], timeout=timeout)

    def wait_all(self, waits: list[Wait], *, timeout: float) -> None:
        """Poll every wait at once; when one's ``ready`` is true its ``then`` runs, and may
        append more waits (what could start only after it). Fails as ``wait_until`` does, for
        whichever child exits or is not ready in ``timeout`` seconds from when its wait was
        added."""
        deadline: dict[int, float] = {}
        while waits:
            for wait in list(waits):
                limit = timeout if wait.timeout is None else wait.timeout
                due = deadline.setdefault(id(wait), time.monotonic() + limit)
                if wait.ready():
                    waits.remove(wait)
                    wait.then()
                    continue
                child = wait.child
                if not child.alive:
                    raise StartupError(
                        f"{child.name} exited while starting:\n{''.join(child.tail)}"
                    )
                if time.monotonic() > due:
                    raise StartupError(f"{child.name} not ready after {limit:.0f}s ({wait.what})")
            if waits:
                self.stop.sleep(0.05)

    def _pid_file(self, child: Child) -> Path:
        return self.run_dir / f"{child.name}.pid"

    def _pump(self, child: Child) -> None:
        assert child.process is not None
        assert child.process.stdout is not None
        for line in child.process.stdout:
            child.tail.append(line)
            self.view.line(child.name, line)

    def stop_all(self) -> None:
        """Stop in reverse start order (the edge first, the databases last). Signals that
        arrive meanwhile are only recorded: the stop runs to its end."""
        if self._stopping:
            return
        self._stopping = True
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
            self._pid_file(child).unlink(missing_ok=True)


@dataclass(frozen=True)
class _PidRecord:
    """What a pid file holds: the group, when it started, and how it wants to be stopped."""

    pgid: int
    order: int
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0

    def write(self, path: Path) -> None:
        record = {
            "pgid": self.pgid,
            "order": self.order,
            "stop_signal": self.stop_signal.name,
            "stop_timeout": self.stop_timeout,
        }
        path.write_text(json.dumps(record))

    @classmethod
    def read(cls, path: Path) -> _PidRecord | None:
        text = path.read_text()
        try:
            # An earlier version wrote the bare pgid.
            return cls(pgid=int(text), order=0)
        except ValueError:
            pass
        try:
            record = json.loads(text)
            return cls(
                pgid=int(record["pgid"]),
                order=int(record["order"]),
                stop_signal=signal.Signals[record["stop_signal"]],
                stop_timeout=float(record["stop_timeout"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _has_live_member(pgid)


def _has_live_member(pgid: int) -> bool:
    """Whether a member of the group is more than a zombie. A worker whose parent died first
    is collected by PID 1, which in a container may take seconds to do it; until then it is a
    zombie that still counts as a member of the group, and would hold up the stop."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


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
            if reap is not None:
                reap()  # the leader may have become a zombie since the last look
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    while reap is not None and time.monotonic() < deadline + 5 and _group_alive(pgid):
        reap()
        time.sleep(0.05)
