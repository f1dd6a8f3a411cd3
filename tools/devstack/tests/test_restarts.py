"""A child that dies while the platform is up is restarted with back-off, as a cluster would,
and the rest of the platform keeps running (issue 15, defect 11)."""

from __future__ import annotations

import io
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstack_devstack.logview import LogView
from shopstack_devstack.processes import STOP_SIGNALS, Child, RestartPolicy, Supervisor


@pytest.fixture(autouse=True)
def _keep_signal_handlers() -> Iterator[None]:
    """``Supervisor.run`` installs its stop handlers; pytest's own come back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _run_until(supervisor: Supervisor, out: io.StringIO, done: re.Pattern[str]) -> int:
    """Run the supervisor's life until its log matches ``done`` (or 30 s pass), then ask it
    to stop as a Ctrl-C would."""

    def stop_when_done() -> None:
        deadline = time.monotonic() + 30
        while not done.search(out.getvalue()) and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.stop.received.append(signal.SIGINT)

    threading.Thread(target=stop_when_done, daemon=True).start()
    return supervisor.run([], ready=lambda: None)


def test_a_crashed_child_restarts_with_growing_back_off_and_the_rest_keeps_running(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        LogView(out), tmp_path, restarts=RestartPolicy(first_delay=0.1, max_delay=0.4)
    )
    steady = supervisor.start(Child("steady", ["sleep", "600"]))
    supervisor.start(Child("crashing", ["sh", "-c", "sleep 0.2; exit 3"]))
    assert steady.process is not None
    steady_pid = steady.process.pid

    code = _run_until(supervisor, out, re.compile(r"crashing exited .*restart 4\b"))

    log = out.getvalue()
    assert code == 0, log
    delays = [
        float(d) for d in re.findall(r"crashing exited \(code 3\); restarting in ([\d.]+)s", log)
    ]
    # Doubling from the first delay, then held at the ceiling.
    assert delays[:4] == [0.1, 0.2, 0.4, 0.4], log
    assert log.count("restarted crashing") >= 3, log
    # The platform did not stop because one part of it died.
    assert "; stopping" not in log
    assert steady.process.pid == steady_pid
    assert "stopped" in log


def test_a_child_that_stayed_up_starts_its_back_off_again(tmp_path: Path) -> None:
    out = io.StringIO()
    # Up longer than ``healthy_after`` each time: every death is a first one.
    supervisor = Supervisor(
        LogView(out), tmp_path,
        restarts=RestartPolicy(first_delay=0.1, max_delay=5, healthy_after=0.2),
    )  # fmt: skip
    supervisor.start(Child("flaky", ["sh", "-c", "sleep 0.4; exit 1"]))

    _run_until(supervisor, out, re.compile(r"restart 3\b"))

    delays = re.findall(r"flaky exited \(code 1\); restarting in ([\d.]+)s", out.getvalue())
    assert delays[:3] == ["0.1", "0.1", "0.1"], out.getvalue()


def test_the_restarted_child_leaves_no_process_of_its_old_group(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(LogView(out), tmp_path, restarts=RestartPolicy(first_delay=0.1))
    # The leader dies; its worker, in the same group, would live on and hold the port.
    worker_pid_file = tmp_path / "worker"
    family = supervisor.start(
        Child("family", ["sh", "-c", f"sleep 600 & echo $! > {worker_pid_file}; sleep 0.3; exit 2"])
    )
    assert family.process is not None
    first = family.process.pid

    _run_until(supervisor, out, re.compile(r"restarted family"))

    worker = int(worker_pid_file.read_text().split()[0]) if worker_pid_file.exists() else None
    assert worker is not None
    status = Path(f"/proc/{worker}/status")
    assert not status.exists() or "zombie" in status.read_text(), "the old worker still runs"
    assert family.process.pid != first
