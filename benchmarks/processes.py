"""The servers a benchmark starts: each in its own process group, its output in a log file,
stopped (SIGTERM, then SIGKILL) when the benchmark leaves the block."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def process(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Iterator[None]:
    log = (logs / f"{name}.log").open("wb")
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(5)
        log.close()


def wait_ok(url: str, logs: Path, name: str, timeout: float = 60) -> None:
    """Until ``url`` answers 200; else stop the benchmark with the end of ``name``'s log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
    raise SystemExit(f"{name} did not answer {url} within {timeout:.0f}s:\n{tail}")


def run_uvicorn(app: Any, port: int) -> None:
    """Serve a baseline as fast as uvicorn serves: httptools, uvloop, no access log."""
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )
