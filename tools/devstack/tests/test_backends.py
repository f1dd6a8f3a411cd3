import gc
import socket
import warnings
from pathlib import Path

import pytest

from shopstack_devstack.backends import docker_answers


def test_no_engine_at_the_socket_is_no_and_leaves_no_socket_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A socket file nothing listens on: the connect is refused, as when the engine is down.
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert docker_answers() is False
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


def test_a_missing_socket_is_no(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    assert docker_answers() is False
