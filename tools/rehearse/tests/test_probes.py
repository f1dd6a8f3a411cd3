"""Probes as the kubelet runs them, and the stop sequence."""

import time
from pathlib import Path

import httpx
import pytest

from shopstack_rehearse.engine import RehearsalError

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
PROBED = (MANIFESTS / "probes-probed.yaml").read_text()
# The same pod whose web container ignores SIGTERM, each container with a preStop hook.
STUBBORN = (MANIFESTS / "probes-stubborn.yaml").read_text()


def wait_for(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.2)


def through_service(cluster, app_image: str) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    return cluster.run_pod(  # type: ignore[no-any-return]
        "client", image=app_image, command=["python3", "/app/app.py", "fetch", "http://web:8080/x"]
    )


def test_readiness_gates_the_service_and_liveness_restarts_in_place(
    rehearsal, render, app_image
) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal(timeout=10)
    with pytest.raises(RehearsalError, match="timed out after 10s waiting for Deployment/shop/web"):
        cluster.install(render(PROBED))
    (pod,) = cluster.pods("Deployment/shop/web")
    web, side = pod.containers
    wait_for(lambda: web.ready)
    assert not side.ready
    assert "exec python3" in side.last_probe
    # The exec probe passes once the file exists, written through the shared emptyDir.
    assert httpx.get(f"http://{pod.ip}:8081/write?path=/flags/ok").text == "written"
    cluster.wait_settled()
    assert pod.ready
    code, log = through_service(cluster, app_image)
    assert code == 0, log

    # Not ready: out of the Service (a new connection is refused), and back once ready.
    httpx.get(f"http://{pod.ip}:8080/unready")
    wait_for(lambda: not pod.ready)
    code, log = through_service(cluster, app_image)
    assert code == 1, log
    assert "Connection refused" in log, log
    httpx.get(f"http://{pod.ip}:8080/ready")
    wait_for(lambda: pod.ready)
    assert through_service(cluster, app_image)[0] == 0

    # Liveness fails twice: the container restarts, the pod keeps its name and address.
    ip = pod.ip
    httpx.get(f"http://{ip}:8080/fail")
    wait_for(lambda: web.restart_count == 1)
    assert "liveness probe failed 2 times" in " ".join(web.events)
    wait_for(lambda: pod.ready)
    assert (pod.ip, cluster.pods("Deployment/shop/web")) == (ip, [pod])


def test_stop_runs_pre_stop_then_sigterm_then_sigkill_after_the_grace_period(
    rehearsal, render
) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(STUBBORN))
    (pod,) = cluster.pods("Deployment/shop/web")
    pod.delete()
    web, side = pod.containers
    assert [e.split(" (")[0] for e in web.events[-3:]] == [
        "preStop",
        "killed with SIGKILL after 2s",
        "stopped: pod deleted",
    ]
    assert "got SIGTERM" in web.last_logs
    assert [e.split(" (")[0] for e in side.events[-2:]] == ["preStop", "stopped: pod deleted"]
    assert "exit 0" in side.events[-2]
    assert not any("SIGKILL" in e for e in side.events)
    assert "drained" in side.last_logs
    assert "got SIGTERM" in side.last_logs
    # The Deployment replaces the deleted pod.
    cluster.wait_settled()
    assert [p.name for p in cluster.pods("Deployment/shop/web")] != [pod.name]
