"""The stop path under the signals a terminal sends: `make up` through uv gets every Ctrl-C
twice, about 200 ms apart, and may get it at any moment of its start-up. A small supervised
set (supervised_set.py) lives through it many times; none of its lives may hang, and none may
leave a process or a pid file behind."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstack_devstack.logview import LogView
from shopstack_devstack.processes import INTERRUPTED, Supervisor

DRIVER = Path(__file__).with_name("supervised_set.py")
# A guard against a hang, not a measure: a life ends in well under a second.
HANG = 30.0


def group_members(pgids: set[int]) -> list[str]:
    """Live processes (zombies are gone for our purposes) in any of ``pgids``, as ps sees
    them."""
    listing = subprocess.run(
        ["ps", "-eo", "pgid=,stat=,pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line.strip()
        for line in listing.splitlines()
        if int(line.split()[0]) in pgids and not line.split()[1].startswith("Z")
    ]


def nothing_left(pgids: set[int]) -> list[str]:
    # The supervisor waits for each group to end; a worker it killed may take a moment more
    # to be collected by its new parent.
    deadline = time.monotonic() + 5
    while (left := group_members(pgids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


class Driver:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER), str(run_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.pgids: set[int] = set()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def begin(self, command: str) -> list[str]:
        """Start one life; returns the list its lines are collected in."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        self.life: list[str] = []
        return self.life

    def expect(self, prefix: str) -> str:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.output.append(line)
            self.life.append(line)
            if line.startswith("pgid "):
                self.pgids.add(int(line.split()[2]))
            if line.startswith(prefix):
                return line
            if line.startswith("exit "):
                pytest.fail(f"the life ended before {prefix!r}:\n" + self.tail())
        pytest.fail(f"no {prefix!r} within {HANG:.0f}s: hung. Last lines:\n" + self.tail())

    def signal(self, sig: signal.Signals = signal.SIGINT) -> None:
        os.kill(self.process.pid, sig)

    def tail(self) -> str:
        return "".join(self.output[-40:])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(HANG)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    running = Driver(tmp_path / "run")
    yield running
    running.close()
    assert running.process.returncode == 0, running.tail()


def test_200_stops_by_a_double_sigint_never_hang_and_leave_nothing(driver: Driver) -> None:
    rng = random.Random(17)
    for life in range(200):
        driver.begin("up")
        driver.expect("up")
        time.sleep(rng.choice([0, rng.uniform(0, 0.02)]))
        driver.signal()
        # The second signal: at once, while the stop runs, or after it ended.
        time.sleep(rng.choice([0, rng.uniform(0, 0.05), rng.uniform(0.15, 0.25)]))
        driver.signal()
        code = driver.expect("exit")
        assert code == "exit 0\n", f"life {life}:\n{driver.tail()}"
        assert nothing_left(driver.pgids) == [], f"life {life}:\n{driver.tail()}"
        assert list(driver.run_dir.glob("*.pid")) == [], f"life {life}"
    # Every life stopped its set in reverse start order.
    stops = [line.split("stopping ")[1].strip() for line in driver.output if "| stopping " in line]
    assert stops == ["stubborn", "service", "database"] * 200


@pytest.mark.parametrize("moment", [0, 0.01, 0.05, 0.1, 0.3, 0.5])
def test_a_stop_during_start_up_is_acted_on_at_once(driver: Driver, moment: float) -> None:
    # The start-up would take ten minutes: a stop it did not act on would hang the life.
    life = driver.begin("startup")
    driver.expect("pgid database")
    time.sleep(moment)
    driver.signal()
    driver.signal()
    assert driver.expect("exit") == f"exit {INTERRUPTED}\n", driver.tail()
    assert not any("late" in line for line in life), "a step after the stop still ran"
    assert any("received SIGINT, stopping" in line for line in life)
    assert nothing_left(driver.pgids) == []
    assert list(driver.run_dir.glob("*.pid")) == []


# A server whose supervisor was killed: not our child, in a group of its own. It notes in the
# journal when its stop signal reaches it.
LEFTOVER = """
import signal, sys, time
name, journal, stop = sys.argv[1:]
def note(signum, frame):
    with open(journal, "a") as out:
        out.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.Signals[stop], note)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def test_leftovers_are_stopped_services_first(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = tmp_path / "journal"
    pgids = set()
    # A database started first, a service after it.
    for name, order, stop_signal in [("database", 1, "SIGINT"), ("service", 2, "SIGTERM")]:
        ready = tmp_path / f"{name}.ready"
        launcher = subprocess.run(
            ["sh", "-c", f'"$@" > {ready} 2>&1 & echo $$', "sh",
             sys.executable, "-c", LEFTOVER, name, str(journal), stop_signal],
            capture_output=True, text=True, check=True, start_new_session=True,
        )  # fmt: skip
        pgid = int(launcher.stdout)
        pgids.add(pgid)
        deadline = time.monotonic() + HANG
        while "ready" not in ready.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        (run_dir / f"{name}.pid").write_text(
            f'{{"pgid": {pgid}, "order": {order}, '
            f'"stop_signal": "{stop_signal}", "stop_timeout": 10}}'
        )

    with open(os.devnull, "w") as devnull:
        Supervisor(LogView(devnull), run_dir).reap_leftovers()

    assert journal.read_text().split() == ["service", "database"]
    assert nothing_left(pgids) == []
    assert list(run_dir.glob("*.pid")) == []
