"""SIGTERM to an ASGI service drains it: new connections are refused, and a request that
arrives on a keep-alive connection already open is still answered, then that connection
closes (issue 15, defect 7: NGINX's requests on such connections were reset)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from shopstack_devstack.ports import free_port, port_in_use

SERVER = """
import sys
from shopstack_common.serving import serve_asgi
from shopstack_common.settings import ServiceSettings

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})

class Settings(ServiceSettings):
    service_name: str = "drain-test"

serve_asgi("__main__:app", Settings(port=int(sys.argv[1]), graceful_timeout_seconds=10,
                                    redis_url="redis://127.0.0.1:1/0"))
"""


@contextlib.contextmanager
def serving(**env: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        env={**os.environ, "ENVIRONMENT": "test", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not port_in_use(port):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    with serving() as running:
        yield running


def test_a_request_on_an_open_keep_alive_connection_is_answered_after_sigterm(
    server: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = server
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    kept.request("GET", "/")
    first = kept.getresponse()
    assert first.read() == b"ok"
    assert first.getheader("connection") != "close"

    process.send_signal(signal.SIGTERM)
    # Stopped accepting: from here on, a peer's requests go elsewhere.
    deadline = time.monotonic() + 10
    while port_in_use(port):
        assert time.monotonic() < deadline, "still accepting after SIGTERM"
        time.sleep(0.02)

    # The connection the peer already holds still carries one more request, and is then
    # closed by the server rather than reset under the peer's feet.
    kept.request("GET", "/")
    second = kept.getresponse()
    assert second.status == 200
    assert second.read() == b"ok"
    assert second.getheader("connection") == "close"
    kept.close()
    # uvicorn ends by raising the signal it caught again, once it has shut down.
    assert process.wait(20) in (0, -signal.SIGTERM)


def test_an_idle_connection_is_closed_after_keep_alive_seconds() -> None:
    """KEEP_ALIVE_SECONDS reaches the server: at 1 s, an idle connection is closed well
    before the default 5 s would close it (the chart sets more for the gateway, to outlast
    the ingress controller's idle connections)."""
    with serving(KEEP_ALIVE_SECONDS="1") as (_, port):
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        kept.request("GET", "/")
        assert kept.getresponse().read() == b"ok"
        assert kept.sock is not None
        kept.sock.settimeout(3)  # past 1 s, short of the default 5 s
        assert kept.sock.recv(1) == b"", "the server kept the idle connection open"
        kept.close()
