"""Ingress and HTTPRoute through the rehearsal's NGINX: what the rules route, and 404 for
everything else."""

import httpx
import pytest

pytestmark = pytest.mark.rehearse

ROUTED = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: APP_IMAGE
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: edge
  annotations: {nginx.ingress.kubernetes.io/proxy-body-size: 1k}
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example
      http:
        paths:
          - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
          - {path: /exact, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other-class}
spec:
  ingressClassName: traefik
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route}
spec:
  parentRefs: [{name: edge}]
  hostnames: [api.example]
  rules:
    - matches: [{path: {type: PathPrefix, value: /v1}}]
      backendRefs: [{name: web, port: 80}]
"""


def test_only_routed_hosts_and_paths_reach_the_service(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(ROUTED))
    assert any("Ingress/shop/other-class: class 'traefik' is not served" in note for note in cluster.notes)
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        for path in ("/api", "/api/", "/api/products/1", "/exact"):
            answer = client.get(path, headers={"Host": "shop.example"})
            assert answer.status_code == 200 and answer.text.endswith(f" {path}"), (path, answer.text)
        assert client.get("/v1/x", headers={"Host": "api.example"}).status_code == 200
        for host, path in (("shop.example", "/apix"), ("shop.example", "/exact/more"), ("shop.example", "/"),
                           ("api.example", "/api"), ("elsewhere.example", "/api"), ("elsewhere.example", "/")):  # fmt: skip
            answer = client.get(path, headers={"Host": host})
            assert answer.status_code == 404, (host, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == 404
        assert client.post("/api/upload", content=b"x" * 512, headers={"Host": "shop.example"}).status_code == 200
        assert client.post("/api/upload", content=b"x" * 4096, headers={"Host": "shop.example"}).status_code == 413
        # The HTTPRoute has no body-size policy: NGINX's 1m default.
        assert client.post("/v1/upload", content=b"x" * 4096, headers={"Host": "api.example"}).status_code == 200
