import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shopstack_devstack.logview import LogView
from shopstack_devstack.processes import Child, StartupError, Supervisor, Wait

# A parent that starts a grandchild ignoring SIGTERM, like a server with workers.
STUBBORN_FAMILY = """
import os, signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('grandchild up', flush=True); time.sleep(600)"])
print(f"pids {os.getpid()} {child.pid}", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_stop_all_leaves_no_process_behind(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(LogView(out), tmp_path)
    child = supervisor.start(
        Child("family", [sys.executable, "-c", STUBBORN_FAMILY], stop_timeout=1.0)
    )
    deadline = time.monotonic() + 15
    while "grandchild up" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [
        int(p)
        for p in next(line for line in out.getvalue().splitlines() if "pids" in line).split()[-2:]
    ]
    assert all(_alive(pid) for pid in pids)
    assert (tmp_path / "family.pid").exists()

    supervisor.stop_all()

    assert child.process is not None
    assert child.process.returncode is not None
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)
    assert not (tmp_path / "family.pid").exists()


def test_leftovers_of_a_killed_run_are_reaped(tmp_path: Path) -> None:
    # A server whose supervisor died: its own session, its parent gone.
    launcher = subprocess.run(
        ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $$ $!"],
        capture_output=True, text=True, check=True, start_new_session=True,
    )  # fmt: skip
    pgid, orphan = (int(p) for p in launcher.stdout.split())
    assert _alive(orphan)
    (tmp_path / "orphan.pid").write_text(str(pgid))

    Supervisor(LogView(io.StringIO()), tmp_path).reap_leftovers()

    deadline = time.monotonic() + 5
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(orphan)
    assert not (tmp_path / "orphan.pid").exists()


def test_wait_all_starts_what_waited_once_its_need_is_met(tmp_path: Path) -> None:
    supervisor = Supervisor(LogView(io.StringIO()), tmp_path)
    done: list[str] = []
    migrate = supervisor.start(Child("migrate", ["true"]))
    server = supervisor.start(Child("server", ["sleep", "600"]))
    waits = []

    def migrated() -> None:
        assert supervisor.finished(migrate) == 0
        done.append("migrate")
        # What may start only now joins the same wait.
        late = supervisor.start(Child("late", ["sleep", "600"]))
        waits.append(Wait(late, lambda: True, "late", lambda: done.append("late")))

    waits += [
        Wait(migrate, lambda: migrate.process is not None and migrate.process.poll() is not None,
             "migrate", migrated),
        Wait(server, lambda: "migrate" in done, "server", lambda: done.append("server")),
    ]  # fmt: skip
    supervisor.wait_all(waits, timeout=30)
    assert set(done) == {"migrate", "server", "late"}
    assert done.index("migrate") < done.index("late")
    assert migrate not in supervisor.children  # a finished one-off is not restarted
    supervisor.stop_all()


def test_wait_all_fails_for_a_child_that_exits_and_for_one_never_ready(tmp_path: Path) -> None:
    supervisor = Supervisor(LogView(io.StringIO()), tmp_path)
    dying = supervisor.start(Child("dying", ["sh", "-c", "echo broken config; exit 3"]))
    assert dying.process is not None
    dying.process.wait()
    with pytest.raises(StartupError, match="dying exited while starting"):
        supervisor.wait_all([Wait(dying, lambda: False, "never")], timeout=30)
    slow = supervisor.start(Child("slow", ["sleep", "600"]))
    with pytest.raises(StartupError, match=r"slow not ready after 0s \(its readyz\)"):
        supervisor.wait_all([Wait(slow, lambda: False, "its readyz", timeout=0.2)], timeout=30)
    supervisor.stop_all()
