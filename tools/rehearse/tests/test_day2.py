"""Day-2 operations: rolling restart, upgrade, a killed pod, a Secret that changes; and a
StatefulSet's ordinals, claims and DNS."""

import json
import time
from pathlib import Path

import httpx
import pytest

from shopstack_rehearse.load import Load

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
WEB = (MANIFESTS / "day2-web.yaml").read_text()


def test_rolling_restart_replaces_each_pod_with_no_failed_request(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    before = {p.name for p in cluster.pods("Deployment/shop/web")}
    with Load(cluster.url, ["/load"], limit=5000) as load:
        time.sleep(0.5)
        cluster.rolling_restart("web")
        time.sleep(0.5)
    after = {p.name for p in cluster.pods("Deployment/shop/web")}
    print(f"rolling restart: {load.summary()}")
    assert len(after) == 2
    assert not before & after
    assert load.sent > 50
    assert load.failed == 0, load.failures[:5]


def test_upgrade_rolls_changed_pods_and_runs_the_upgrade_hooks(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    before = {p.name for p in cluster.pods("Deployment/shop/web")}
    hooks = len(cluster.hook_runs)
    cluster.upgrade(
        render(WEB.replace("GREETING: hello", "GREETING: howdy").replace("CHECKSUM", "changed"))
    )
    assert [(r.phase, r.ref) for r in cluster.hook_runs[hooks:]] == [
        ("pre-upgrade", "Job/shop/migrate")
    ]
    pods = cluster.pods("Deployment/shop/web")
    assert len(pods) == 2
    assert not before & {p.name for p in pods}
    assert httpx.get(f"http://{pods[0].ip}:8080/env/GREETING").text == "howdy"
    # An upgrade that changes nothing in the pod template leaves the pods alone.
    same = {p.name for p in pods}
    cluster.upgrade(
        render(WEB.replace("GREETING: hello", "GREETING: howdy").replace("CHECKSUM", "changed"))
    )
    assert {p.name for p in cluster.pods("Deployment/shop/web")} == same


def test_a_killed_pod_is_replaced_and_a_secret_update_reaches_mounted_files(
    rehearsal, render
) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    victim, survivor = cluster.pods("Deployment/shop/web")
    cluster.kill_pod(victim.name)
    assert httpx.get(f"{cluster.url}/still-there", timeout=5).status_code == 200
    cluster.wait_settled()
    names = {p.name for p in cluster.pods("Deployment/shop/web")}
    assert survivor.name in names
    assert victim.name not in names
    assert len(names) == 2

    assert cluster.update_secret("shop", "keys", {"new.pem": b"NEW"}) == 2
    for pod in cluster.pods("Deployment/shop/web"):
        assert (
            httpx.get(f"http://{pod.ip}:8080/file", params={"path": "/keys/new.pem"}).text == "NEW"
        )
        assert (
            httpx.get(f"http://{pod.ip}:8080/file", params={"path": "/keys/old.pem"}).text == "OLD"
        )


def test_a_killed_container_is_restarted_in_its_pod_and_back_through_its_probes(
    rehearsal, render
) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    victim, _ = cluster.pods("Deployment/shop/web")
    worker = cluster.kill_container(victim.name)
    deadline = time.monotonic() + 30
    while worker.restart_count == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "exited with code 137" in worker.events, worker.events
    cluster.wait_settled()
    assert cluster.pod(victim.name) is victim
    assert (victim.ready, victim.restarts) == (True, 1)


DATABASE = (MANIFESTS / "day2-database.yaml").read_text()


def test_a_statefulset_keeps_its_ordinals_claims_and_names(rehearsal, render, app_image) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(DATABASE))
    first, second = sorted(cluster.pods("StatefulSet/shop/db"), key=lambda p: p.name)
    assert (first.name, second.name) == ("db-0", "db-1")
    assert first.ready_since is not None
    assert second.created_at >= first.ready_since
    assert (
        json.loads(httpx.get(f"http://{first.ip}:8080/stat", params={"path": "/data"}).text)["gid"]
        == 2000
    )
    assert (
        httpx.get(f"http://{first.ip}:8080/write", params={"path": "/data/row"}).text == "written"
    )

    cluster.kill_pod("db-0")
    cluster.wait_settled()
    again = cluster.pod("db-0")
    assert again is not first
    assert httpx.get(f"http://{again.ip}:8080/file", params={"path": "/data/row"}).text == "x"
    code, log = cluster.run_pod(
        "client",
        image=app_image,
        command=["python3", "/app/app.py", "fetch", "http://db-1.db-headless:8080/who"],
    )
    assert code == 0, log
    assert "db-1 /who" in log, log
