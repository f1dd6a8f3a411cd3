"""What each container gets: image, command and args, env and envFrom, fieldRefs, ports,
working dir, security context, volumes with modes and fsGroup, limits; and Services."""

import json
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
WEB = (MANIFESTS / "workloads-web.yaml").read_text()


def get(ip: str, path: str) -> httpx.Response:
    return httpx.get(f"http://{ip}:8080{path}", timeout=5)


def test_a_deployment_runs_as_its_manifest_says(rehearsal, render, app_image) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    pods = cluster.pods("Deployment/shop/web")
    assert len(pods) == 2  # three rendered, capped at two
    assert any("3 replicas rendered, 2 run" in note for note in cluster.notes)
    pod = pods[0]
    ip = pod.ip

    env = {
        name: get(ip, f"/env/{name}").text
        for name in (
            "PASSWORD",
            "LEVEL",
            "CFG_GREETING",
            "POD_NAME",
            "POD_NAMESPACE",
            "POD_IP",
            "WHERE",
        )
    }
    assert env == {
        "PASSWORD": "hunter2",
        "LEVEL": "debug",
        "CFG_GREETING": "hello",
        "POD_NAME": pod.name,
        "POD_NAMESPACE": "shop",
        "POD_IP": ip,
        "WHERE": f"{pod.name}@{ip}",
    }
    assert get(ip, "/env/OPTIONAL").status_code == 404

    identity = json.loads(get(ip, "/id").text)
    assert (identity["uid"], identity["gid"]) == (10001, 10001)
    assert {2000, 3000} <= set(identity["groups"])
    assert identity["NoNewPrivs"] == "1"
    assert int(identity["CapEff"], 16) == 0
    assert identity["hostname"] == pod.name
    assert identity["cwd"] == "/tmp"  # noqa: S108 - the container's workingDir
    assert get(ip, "/memory").text == str(96 * 2**20)
    assert get(ip, "/cpu").text == "50000"  # 500m: half of each 100 ms period

    # Read-only root, a writable emptyDir; the 0400 key is readable through fsGroup.
    assert "Read-only file system" in get(ip, "/write?path=/app/x").text
    assert get(ip, "/write?path=/tmp/x").text == "written"
    assert get(ip, "/file?path=/keys/signing.pem").text == "PRIVATE"
    key = json.loads(get(ip, "/stat?path=/keys/signing.pem").text)
    assert (key["mode"], key["gid"], key["uid"]) == ("0o440", 2000, 0)
    assert json.loads(get(ip, "/stat?path=/keys/sub/password").text)["mode"] == "0o440"
    assert get(ip, "/file?path=/etc/settings.conf").text == "hello"
    # The claim: one volume for both pods, the pod's fsGroup on it.
    assert json.loads(get(ip, "/stat?path=/data").text)["gid"] == 2000
    assert get(ip, "/write?path=/data/shared").text == "written"
    assert get(pods[1].ip, "/file?path=/data/shared").text == "x"

    # The Service: DNS names of the cluster, port 80 to the pods' named port 8080.
    for name in ("web", "web.shop", "web.shop.svc", "web.shop.svc.cluster.local"):
        code, log = cluster.run_pod(
            f"client-{name.count('.')}",
            image=app_image,
            command=["python3", "/app/app.py", "fetch", f"http://{name}/hello"],
        )
        assert code == 0, log
        assert log.split(" ")[1].startswith("web-"), log


def test_a_missing_image_is_refused_before_anything_starts(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    from shopstack_rehearse.engine import RehearsalError

    cluster = rehearsal()
    with pytest.raises(
        RehearsalError, match=r"Deployment/shop/web container 'web': image 'shopstack/nowhere:1'"
    ):
        cluster.install(render(WEB.replace("APP_IMAGE", "shopstack/nowhere:1")))
    assert cluster.pods() == []


AUTOSCALED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: scaled}
spec:
  selector: {matchLabels: {app: scaled}}
  template:
    metadata: {labels: {app: scaled}}
    spec:
      containers: [{name: web, image: APP_IMAGE, args: [serve]}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: scaled}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: scaled}
  minReplicas: 2
  maxReplicas: 5
"""


def test_an_autoscaled_deployment_without_replicas_runs_the_minimum(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(AUTOSCALED))
    assert len(cluster.pods("Deployment/shop/scaled")) == 2
    assert any("its autoscaler's minReplicas" in note for note in cluster.notes)
