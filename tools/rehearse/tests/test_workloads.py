"""What each container gets: image, command and args, env and envFrom, fieldRefs, ports,
working dir, security context, volumes with modes and fsGroup, limits; and Services."""

import json

import httpx
import pytest

pytestmark = pytest.mark.rehearse

WEB = """
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2, signing.pem: PRIVATE}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {GREETING: hello, LEVEL: debug}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true, fsGroup: 2000, supplementalGroups: [3000]}
      containers:
        - name: web
          image: APP_IMAGE
          command: [python3, /app/app.py]
          args: [serve, "$(PORT)"]
          workingDir: /tmp
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: PORT, value: "8080"}
            - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
            - {name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}}
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
            - {name: WHERE, value: "$(POD_NAME)@$(POD_IP)"}
            - {name: OPTIONAL, valueFrom: {secretKeyRef: {name: creds, key: absent, optional: true}}}
          envFrom: [{configMapRef: {name: settings}, prefix: CFG_}]
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
          securityContext:
            runAsUser: 10001
            runAsGroup: 10001
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          resources: {limits: {memory: 96Mi, cpu: 500m}}
          volumeMounts:
            - {name: keys, mountPath: /keys}
            - {name: tmp, mountPath: /tmp}
            - {name: settings, mountPath: /etc/settings.conf, subPath: GREETING}
      volumes:
        - name: keys
          secret:
            secretName: creds
            defaultMode: 0400
            items: [{key: signing.pem, path: signing.pem}, {key: password, path: sub/password, mode: 0440}]
        - {name: tmp, emptyDir: {sizeLimit: 8Mi}}
        - {name: settings, configMap: {name: settings}}
"""


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

    env = {name: get(ip, f"/env/{name}").text for name in ("PASSWORD", "LEVEL", "CFG_GREETING", "POD_NAME", "POD_NAMESPACE", "POD_IP", "WHERE")}
    assert env == {
        "PASSWORD": "hunter2", "LEVEL": "debug", "CFG_GREETING": "hello", "POD_NAME": pod.name,
        "POD_NAMESPACE": "shop", "POD_IP": ip, "WHERE": f"{pod.name}@{ip}",
    }  # fmt: skip
    assert get(ip, "/env/OPTIONAL").status_code == 404

    identity = json.loads(get(ip, "/id").text)
    assert (identity["uid"], identity["gid"]) == (10001, 10001)
    assert {2000, 3000} <= set(identity["groups"])
    assert identity["NoNewPrivs"] == "1"
    assert int(identity["CapEff"], 16) == 0
    assert identity["hostname"] == pod.name
    assert identity["cwd"] == "/tmp"
    assert get(ip, "/memory").text == str(96 * 2**20)

    # Read-only root, a writable emptyDir; the 0400 key is readable through fsGroup.
    assert "Read-only file system" in get(ip, "/write?path=/app/x").text
    assert get(ip, "/write?path=/tmp/x").text == "written"
    assert get(ip, "/file?path=/keys/signing.pem").text == "PRIVATE"
    key = json.loads(get(ip, "/stat?path=/keys/signing.pem").text)
    assert (key["mode"], key["gid"], key["uid"]) == ("0o440", 2000, 0)
    assert json.loads(get(ip, "/stat?path=/keys/sub/password").text)["mode"] == "0o440"
    assert get(ip, "/file?path=/etc/settings.conf").text == "hello"

    # The Service: DNS names of the cluster, port 80 to the pods' named port 8080.
    for name in ("web", "web.shop", "web.shop.svc", "web.shop.svc.cluster.local"):
        code, log = cluster.run_pod(
            f"client-{name.count('.')}", image=app_image, command=["python3", "/app/app.py", "fetch", f"http://{name}/hello"]
        )
        assert code == 0, log
        assert log.split(" ")[1].startswith("web-"), log


def test_a_missing_image_is_refused_before_anything_starts(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    from shopstack_rehearse.engine import RehearsalError

    cluster = rehearsal()
    with pytest.raises(RehearsalError, match=r"Deployment/shop/web container 'web': image 'shopstack/nowhere:1'"):
        cluster.install(render(WEB.replace("APP_IMAGE", "shopstack/nowhere:1")))
    assert cluster.pods() == []
