"""NetworkPolicy enforced in every pod's own rules: what the policies deny does not get
through, whoever sends it and however it is addressed."""

import json

import httpx
import pytest

from shopstack_rehearse.engine import RehearsalError

pytestmark = pytest.mark.rehearse

PLATFORM = """
apiVersion: v1
kind: Service
metadata: {name: orders}
spec: {selector: {app: orders}, ports: [{name: http, port: 8080, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: gateway}
spec: {selector: {app: gateway}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders}
spec:
  replicas: 1
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
        - name: orders
          image: APP_IMAGE
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gateway}
spec:
  replicas: 1
  selector: {matchLabels: {app: gateway}}
  template:
    metadata: {labels: {app: gateway}}
    spec:
      containers:
        - name: gateway
          image: APP_IMAGE
          ports: [{name: http, containerPort: 8080}]
          # Ready only while it reaches its upstream, as a gateway checking it would be.
          readinessProbe:
            exec: {command: [python3, /app/app.py, fetch, "http://orders:8080/readyz"]}
            periodSeconds: 1
            timeoutSeconds: 5
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: orders}
spec:
  podSelector: {matchLabels: {app: orders}}
  ingress: [{from: [{podSelector: {matchLabels: {app: gateway}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: gateway}
spec:
  podSelector: {matchLabels: {app: gateway}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]
      ports: [{port: 8080}]
  egress:
    - to: [{podSelector: {matchLabels: {app: orders}}}]
      ports: [{port: 8080}]
    - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: edge}
spec:
  ingressClassName: nginx
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: gateway, port: {name: http}}}}]}}]
"""


def fetch(cluster, app_image: str, url: str, namespace: str = "shop", labels: dict[str, str] | None = None) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    return cluster.run_pod(  # type: ignore[no-any-return]
        "stray", image=app_image, namespace=namespace, labels=labels or {"app": "stray"},
        command=["python3", "/app/app.py", "fetch", url],
    )  # fmt: skip


def test_only_the_allowed_paths_get_through(rehearsal, render, app_image) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(PLATFORM))
    (orders,) = cluster.pods("Deployment/shop/orders")
    (gateway,) = cluster.pods("Deployment/shop/gateway")

    # client -> NGINX -> gateway -> orders: every hop allowed.
    answer = httpx.get(f"{cluster.url}/fetch", params={"url": "http://orders:8080/hi"}, timeout=10)
    assert answer.status_code == 200 and json.loads(answer.text)["status"] == 200, answer.text

    # orders may not call the gateway back: its egress is denied, DNS included.
    reverse = httpx.get(f"http://{orders.ip}:8080/fetch", params={"url": f"http://{gateway.ip}:8080/"}, timeout=10)
    assert json.loads(reverse.text)["status"] == 0, reverse.text
    by_name = httpx.get(f"http://{orders.ip}:8080/fetch", params={"url": "http://gateway/"}, timeout=10)
    assert "Name or service not known" in by_name.text or "name resolution" in by_name.text, by_name.text

    # A stray pod in the namespace: its own egress is denied by deny-all.
    code, log = fetch(cluster, app_image, "http://orders:8080/products")
    assert code == 1, log
    # One in a namespace without policies sends freely, and orders refuses it, by
    # Service name, by Service address and by pod address alike.
    for url in ("http://orders.shop:8080/", f"http://{orders.ip}:8080/"):
        code, log = fetch(cluster, app_image, url, namespace="elsewhere")
        assert code == 1 and "Connection refused" in log, log
    # Nor may it reach the gateway around NGINX.
    code, log = fetch(cluster, app_image, "http://gateway.shop/", namespace="elsewhere")
    assert code == 1 and "Connection refused" in log, log


def test_a_policy_that_blocks_a_needed_path_fails_the_run_naming_the_workload(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    blocked = PLATFORM.replace("    - to: [{podSelector: {matchLabels: {app: orders}}}]\n      ports: [{port: 8080}]\n", "")
    cluster = rehearsal(timeout=15)
    with pytest.raises(RehearsalError, match=r"(?s)waiting for Deployment/shop/gateway.*readiness: exec python3 /app/app.py fetch http://orders:8080/readyz: exit 1"):
        cluster.install(render(blocked))


def test_a_policy_it_cannot_enforce_fails_the_run(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    sctp = PLATFORM.replace("ports: [{port: 53, protocol: UDP}", "ports: [{port: 9, protocol: SCTP}, {port: 53, protocol: UDP}")
    cluster = rehearsal(timeout=15)
    with pytest.raises(RehearsalError, match="NetworkPolicy/shop/gateway: protocol SCTP cannot be enforced"):
        cluster.install(render(sctp))
