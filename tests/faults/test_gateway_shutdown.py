"""SIGTERM to one of two gateways during a burst fails nothing (issue 15, defect 7: a burst
of 150 got 134 NGINX 503s). The burst has POSTs without an Idempotency-Key, which NGINX must
not resend: the draining gateway has to answer each one it was sent."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import httpx
import pytest

from shopstack_devstack.local_platform import LocalPlatform
from tests.faults.conftest import pid_of, signal_child

pytestmark = pytest.mark.faults

CLIENTS = 24


def test_sigterm_to_one_gateway_during_a_burst_fails_nothing(
    faulty_platform: LocalPlatform,
) -> None:
    stop = threading.Event()
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        # Keep-alive to NGINX, and NGINX's own pool to the gateways, as real clients have.
        with httpx.Client(base_url=faulty_platform.url, timeout=30) as http:
            while not stop.is_set():
                for method, path, data in (
                    ("GET", "/api/v1/products?limit=1", None),
                    # RFC 7009: revoking a token the server does not know answers 200.
                    ("POST", "/api/v1/auth/revoke", {"token": "not-a-token"}),
                ):
                    try:
                        status = str(http.request(method, path, data=data).status_code)
                    except httpx.TransportError as error:
                        status = type(error).__name__
                    with lock:
                        answers[f"{method} {status}"] += 1

    before = pid_of(faulty_platform, "gateway")
    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    signal_child(faulty_platform, "gateway", signal.SIGTERM)
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join(60)

    assert pid_of(faulty_platform, "gateway") != before or "gateway exited" in faulty_platform.log()
    failed = {k: v for k, v in answers.items() if not k.endswith(" 200")}
    assert not failed, answers
    assert answers["POST 200"] > 0
    assert answers["GET 200"] > 0
