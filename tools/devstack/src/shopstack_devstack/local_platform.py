"""`shopstack-devstack up` (what `make up` runs) as a test starts it: on free ports, with its own
data directory, its output kept, and stopped when the test ends. The end-to-end and the
monitoring tiers run the platform through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

READY_LINE = "shopstack is up"


@dataclass
class LocalPlatform:
    """`shopstack-devstack up` (what `make up` runs) on free ports with its own data dir."""

    data_dir: Path
    ports: dict[str, int]
    # More of the devstack's settings (SHOPSTACK_*), or REDIS_URL / DATABASE_URL for servers
    # the test runs itself.
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
        env.update(self.extra_env)
        return env

    def start(self, *args: str, timeout: float = 180) -> None:
        self.output.clear()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
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
