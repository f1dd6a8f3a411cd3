import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shopstack_devstack.ports import free_port

READY_LINE = "shopstack is up"


@dataclass
class LocalPlatform:
    """`shopstack-devstack up` (what `make up` runs) on free ports with its own data dir."""

    data_dir: Path
    ports: dict[str, int]
    # Settings the services read from the environment, as an operator would set them.
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env["SHOPSTACK_DATA_DIR"] = str(self.data_dir)
        env["SHOPSTACK_LOG_FORMAT"] = "json"
        for name, port in self.ports.items():
            env[f"SHOPSTACK_{name.upper()}_PORT"] = str(port)
        return env | self.extra_env

    def start(self, *args: str, timeout: float = 180) -> None:
        self.output.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shopstack_devstack", "up", *args],
            env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if READY_LINE in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("the platform did not come up:\n" + "".join(self.output[-60:]))

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(90)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def log(self) -> str:
        return "".join(self.output)


def _platform(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[LocalPlatform]:
    names = ("nginx", "gateway", "users", "orders", "postgres", "redis")
    ports = {n: free_port() for n in names}
    stack = LocalPlatform(data_dir=data_dir, ports=ports, extra_env=extra_env or {})
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.stop(signal.SIGKILL)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    yield from _platform(tmp_path / "devstack")


@pytest.fixture(scope="module")
def running_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """One platform, up, for a whole module of tests that do not stop it."""
    for stack in _platform(tmp_path_factory.mktemp("devstack")):
        stack.start()
        yield stack
        assert stack.stop() == 0, stack.log()[-4000:]
