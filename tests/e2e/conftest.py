import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstack_devstack.local_platform import LocalPlatform
from shopstack_devstack.ports import free_port

__all__ = ["LocalPlatform"]


def _platform(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[LocalPlatform]:
    names = ("nginx", "gateway", "users", "orders", "orders_relay", "postgres", "redis")
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
