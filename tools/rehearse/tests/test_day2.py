"""Day-2 operations: rolling restart, upgrade, a killed pod, a Secret that changes; and a
StatefulSet's ordinals, claims and DNS."""

import json
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.rehearse

WEB = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {GREETING: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: keys}
stringData: {old.pem: OLD}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {checksum/config: "CHECKSUM"}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: APP_IMAGE
          envFrom: [{configMapRef: {name: settings}}]
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
          lifecycle: {preStop: {sleep: {seconds: 2}}}
          volumeMounts: [{name: keys, mountPath: /keys}]
      volumes: [{name: keys, secret: {secretName: keys}}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations: {helm.sh/hook: "pre-install,pre-upgrade", helm.sh/hook-delete-policy: "before-hook-creation,hook-succeeded"}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: APP_IMAGE, args: [exit, "0"]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: edge}
spec:
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
"""


class Load:
    """A bounded request loop through NGINX: counts what was sent and what failed."""

    def __init__(self, url: str, limit: int = 5000) -> None:
        self.url, self.limit = url, limit
        self.sent = self.failed = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set() and self.sent < self.limit:
                self.sent += 1
                try:
                    answer = client.get(f"{self.url}/load")
                    if answer.status_code != 200:
                        self.failed += 1
                        self.failures.append(f"{answer.status_code} {answer.text[:100]}")
                except httpx.HTTPError as error:
                    self.failed += 1
                    self.failures.append(repr(error))
                time.sleep(0.01)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_rolling_restart_replaces_each_pod_with_no_failed_request(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    before = {p.name for p in cluster.pods("Deployment/shop/web")}
    with Load(cluster.url) as load:
        time.sleep(0.5)
        cluster.rolling_restart("web")
        time.sleep(0.5)
    after = {p.name for p in cluster.pods("Deployment/shop/web")}
    print(f"rolling restart: {load.sent} requests sent, {load.failed} failed")
    assert len(after) == 2 and not before & after
    assert load.sent > 50
    assert load.failed == 0, load.failures[:5]


def test_upgrade_rolls_changed_pods_and_runs_the_upgrade_hooks(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    before = {p.name for p in cluster.pods("Deployment/shop/web")}
    hooks = len(cluster.hook_runs)
    cluster.upgrade(render(WEB.replace("GREETING: hello", "GREETING: howdy").replace("CHECKSUM", "changed")))
    assert [(r.phase, r.ref) for r in cluster.hook_runs[hooks:]] == [("pre-upgrade", "Job/shop/migrate")]
    pods = cluster.pods("Deployment/shop/web")
    assert len(pods) == 2 and not before & {p.name for p in pods}
    assert httpx.get(f"http://{pods[0].ip}:8080/env/GREETING").text == "howdy"
    # An upgrade that changes nothing in the pod template leaves the pods alone.
    same = {p.name for p in pods}
    cluster.upgrade(render(WEB.replace("GREETING: hello", "GREETING: howdy").replace("CHECKSUM", "changed")))
    assert {p.name for p in cluster.pods("Deployment/shop/web")} == same


def test_a_killed_pod_is_replaced_and_a_secret_update_reaches_mounted_files(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(WEB))
    victim, survivor = cluster.pods("Deployment/shop/web")
    cluster.kill_pod(victim.name)
    assert httpx.get(f"{cluster.url}/still-there", timeout=5).status_code == 200
    cluster.wait_settled()
    names = {p.name for p in cluster.pods("Deployment/shop/web")}
    assert survivor.name in names and victim.name not in names and len(names) == 2

    assert cluster.update_secret("shop", "keys", {"new.pem": b"NEW"}) == 2
    for pod in cluster.pods("Deployment/shop/web"):
        assert httpx.get(f"http://{pod.ip}:8080/file", params={"path": "/keys/new.pem"}).text == "NEW"
        assert httpx.get(f"http://{pod.ip}:8080/file", params={"path": "/keys/old.pem"}).text == "OLD"


DATABASE = """
apiVersion: v1
kind: Service
metadata: {name: db-headless}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 8080}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db-headless
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      securityContext: {fsGroup: 2000}
      containers:
        - name: db
          image: APP_IMAGE
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
          volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def test_a_statefulset_keeps_its_ordinals_claims_and_names(rehearsal, render, app_image) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(DATABASE))
    first, second = sorted(cluster.pods("StatefulSet/shop/db"), key=lambda p: p.name)
    assert (first.name, second.name) == ("db-0", "db-1")
    assert first.ready_since is not None and second.created_at >= first.ready_since  # ordered start
    assert json.loads(httpx.get(f"http://{first.ip}:8080/stat", params={"path": "/data"}).text)["gid"] == 2000
    assert httpx.get(f"http://{first.ip}:8080/write", params={"path": "/data/row"}).text == "written"

    cluster.kill_pod("db-0")
    cluster.wait_settled()
    again = cluster.pod("db-0")
    assert again is not first
    assert httpx.get(f"http://{again.ip}:8080/file", params={"path": "/data/row"}).text == "x"
    code, log = cluster.run_pod("client", image=app_image, command=["python3", "/app/app.py", "fetch", "http://db-1.db-headless:8080/who"])
    assert code == 0 and "db-1 /who" in log, log
