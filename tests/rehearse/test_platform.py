"""The platform as the chart deploys it, for the dev values (the chart's own PostgreSQL and
Redis, generated Secrets) and the production values (external PostgreSQL and Redis, Secrets
made beforehand): the end-to-end shopping flow through the rehearsal's NGINX, what NGINX
keeps to itself, and the NetworkPolicy that makes the gateway's identity headers trustworthy."""

import os

import pytest

from tests.e2e.shopping import shop
from tests.rehearse.conftest import RELEASE, Rehearsed

pytestmark = pytest.mark.rehearse

PYTHON_IMAGE = os.environ.get("PYTHON_IMAGE", "python:3.11-slim")

# A client that speaks to orders' API directly, as the gateway does, claiming to be an admin.
FORGED_REQUEST = """
import json, sys, urllib.error, urllib.request
product = {"sku": "FORGED-1", "name": "Forged", "price": 1, "currency": "EUR", "stock": 1}
request = urllib.request.Request(
    sys.argv[1], data=json.dumps(product).encode(), method="POST",
    headers={"Content-Type": "application/json",
             "X-Shopstack-User-Id": "00000000-0000-0000-0000-000000000001",
             "X-Shopstack-Roles": "admin", "X-Shopstack-Scopes": ""},
)
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        print("status", answer.status)
except urllib.error.HTTPError as error:
    print("status", error.code, error.read().decode()[:300])
except OSError as error:
    print("unreachable:", error)
    sys.exit(3)
"""


def test_the_shopping_flow_through_the_rehearsals_nginx(rehearsed: Rehearsed) -> None:
    with rehearsed.client() as client:
        shop(client, rehearsed.admin)


def test_nginx_keeps_metrics_probes_and_unrouted_hosts_to_itself(rehearsed: Rehearsed) -> None:
    with rehearsed.client() as client:
        assert client.get("/api/v1/products").status_code == 200
        for path in ("/metrics", "/readyz", "/healthz"):
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        other_host = client.get("/api/v1/products", headers={"Host": "elsewhere.example"})
        assert other_host.status_code == 404


def test_only_the_gateway_reaches_orders_with_identity_headers(rehearsed: Rehearsed) -> None:
    cluster = rehearsed.cluster
    url = f"http://{RELEASE}-orders:8000/api/v1/products"
    command = ["python3", "-c", FORGED_REQUEST, url]
    code, log = cluster.run_pod("stray", image=PYTHON_IMAGE, command=command)
    assert code == 3, log
    assert "Connection refused" in log, log

    # The same request from a pod with the gateway's labels gets through: the policy, not
    # the address or the request, is what stopped the stray one.
    gateway = next(
        o for o in rehearsed.manifests.of_kind("Deployment") if o.name == f"{RELEASE}-gateway"
    )
    labels = dict(gateway.spec["template"]["metadata"]["labels"])
    code, log = cluster.run_pod("posing", image=PYTHON_IMAGE, command=command, labels=labels)
    assert code == 0, log
    assert "status 201" in log, log
