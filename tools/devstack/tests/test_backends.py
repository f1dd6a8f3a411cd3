import gc
import http.server
import json
import re
import socket
import socketserver
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstack_devstack.backends import (
    BackendError,
    Choice,
    choose_backend,
    docker_answers,
    start_servers,
)


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


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A Docker engine's API on a unix socket: it answers, holds the images in ``local`` and
    can pull those in ``pullable``; asking a registry for any other fails as it does offline."""

    daemon_threads = True

    def __init__(self, path: Path, local: set[str], pullable: set[str]) -> None:
        self.local = local
        self.pullable = pullable
        super().__init__(str(path), FakeEngineHandler)


class FakeEngineHandler(http.server.BaseHTTPRequestHandler):
    server: FakeEngine

    def address_string(self) -> str:
        return "docker.sock"

    def log_message(self, *_: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urllib.parse.unquote(self.path.split("?")[0])
        path = re.sub(r"^/v[0-9.]+", "", path)
        if path == "/version":
            self.answer(200, {"ApiVersion": "1.43", "Version": "24.0.0"})
        elif path == "/_ping":
            self.answer(200, "OK")
        elif m := re.fullmatch(r"/images/(.+)/json", path):
            if m[1] in self.server.local:
                self.answer(200, {"Id": "sha256:" + "0" * 64, "RepoTags": [m[1]]})
            else:
                self.answer(404, {"message": f"No such image: {m[1]}"})
        elif m := re.fullmatch(r"/distribution/(.+)/json", path):
            if m[1] in self.server.pullable:
                descriptor = {"mediaType": "x", "digest": "sha256:" + "1" * 64, "size": 1}
                self.answer(200, {"Descriptor": descriptor, "Platforms": []})
            else:
                message = "Get https://registry-1.docker.io/v2/: dial tcp: no such host"
                self.answer(500, {"message": message})
        else:
            self.answer(404, {"message": f"page not found: {path}"})

    def answer(self, status: int, body: object) -> None:
        text = isinstance(body, str)
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngine]:
    path = tmp_path / "docker.sock"
    server = FakeEngine(path, local=set(), pullable=set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    monkeypatch.delenv("SHOPSTACK_TEST_BACKEND", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    monkeypatch.setenv("POSTGRES_IMAGE", "postgres:17")
    monkeypatch.setenv("REDIS_IMAGE", "redis:7")
    monkeypatch.setenv("RYUK_CONTAINER_IMAGE", "testcontainers/ryuk:0.8.1")
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_engine_that_cannot_pull_ryuk_means_embedded(engine: FakeEngine) -> None:
    engine.local = {"postgres:17", "redis:7"}
    choice = choose_backend()
    assert choice.backend == "embedded"
    assert "testcontainers/ryuk:0.8.1 is not on the engine and cannot be pulled" in choice.reason
    assert "no such host" in choice.reason
    assert "postgres:17" not in choice.reason


def test_without_ryuk_the_local_images_are_enough(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.local = {"postgres:17", "redis:7"}
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    choice = choose_backend()
    assert choice == Choice("containers", "Docker answers and has or can pull postgres:17, redis:7")


def test_pullable_images_mean_containers(engine: FakeEngine) -> None:
    engine.local = {"redis:7"}
    engine.pullable = {"postgres:17", "testcontainers/ryuk:0.8.1"}
    assert choose_backend().backend == "containers"


def test_an_engine_with_nothing_names_every_missing_image(engine: FakeEngine) -> None:
    choice = choose_backend()
    assert choice.backend == "embedded"
    for image in ("postgres:17", "redis:7", "testcontainers/ryuk:0.8.1"):
        assert f"{image} is not on the engine" in choice.reason


def test_an_explicit_backend_is_taken_as_it_is(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPSTACK_TEST_BACKEND", "containers")
    assert choose_backend() == Choice("containers", "SHOPSTACK_TEST_BACKEND")


def test_containers_named_without_an_engine_fail_with_the_embedded_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    with (
        pytest.raises(BackendError, match="SHOPSTACK_TEST_BACKEND=embedded"),
        start_servers("containers"),
    ):
        pass
