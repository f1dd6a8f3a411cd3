"""NetworkPolicy enforced in every pod's own rules: what the policies deny does not get
through, whoever sends it and however it is addressed."""

import json
from pathlib import Path

import httpx
import pytest

from shopstack_rehearse.engine import RehearsalError

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
PLATFORM = (MANIFESTS / "network-policy-platform.yaml").read_text()


def fetch(
    cluster, app_image: str, url: str, namespace: str = "shop", labels: dict[str, str] | None = None
) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    return cluster.run_pod(  # type: ignore[no-any-return]
        "stray",
        image=app_image,
        namespace=namespace,
        labels=labels or {"app": "stray"},
        command=["python3", "/app/app.py", "fetch", url],
    )


def test_only_the_allowed_paths_get_through(rehearsal, render, app_image) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(PLATFORM))
    (orders,) = cluster.pods("Deployment/shop/orders")
    (gateway,) = cluster.pods("Deployment/shop/gateway")

    # client -> NGINX -> gateway -> orders: every hop allowed.
    answer = httpx.get(f"{cluster.url}/fetch", params={"url": "http://orders:8080/hi"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.text)["status"] == 200, answer.text

    # orders may not call the gateway back: its egress is denied, DNS included.
    reverse = httpx.get(
        f"http://{orders.ip}:8080/fetch", params={"url": f"http://{gateway.ip}:8080/"}, timeout=10
    )
    assert json.loads(reverse.text)["status"] == 0, reverse.text
    by_name = httpx.get(
        f"http://{orders.ip}:8080/fetch", params={"url": "http://gateway/"}, timeout=10
    )
    assert "Name or service not known" in by_name.text or "name resolution" in by_name.text, (
        by_name.text
    )

    # A stray pod in the namespace: its own egress is denied by deny-all.
    code, log = fetch(cluster, app_image, "http://orders:8080/products")
    assert code == 1, log
    # One in a namespace without policies sends freely, and orders refuses it, by
    # Service name, by Service address and by pod address alike.
    for url in ("http://orders.shop:8080/", f"http://{orders.ip}:8080/"):
        code, log = fetch(cluster, app_image, url, namespace="elsewhere")
        assert code == 1, log
        assert "Connection refused" in log, log
    # Nor may it reach the gateway around NGINX.
    code, log = fetch(cluster, app_image, "http://gateway.shop/", namespace="elsewhere")
    assert code == 1, log
    assert "Connection refused" in log, log


def test_a_policy_that_blocks_a_needed_path_fails_the_run_naming_the_workload(
    rehearsal, render
) -> None:  # type: ignore[no-untyped-def]
    blocked = PLATFORM.replace(
        "    - to: [{podSelector: {matchLabels: {app: orders}}}]\n      ports: [{port: 8080}]\n", ""
    )
    cluster = rehearsal(timeout=15)
    with pytest.raises(
        RehearsalError,
        match=r"(?s)waiting for Deployment/shop/gateway.*"
        r"readiness: exec python3 /app/app.py fetch http://orders:8080/readyz: exit 1",
    ):
        cluster.install(render(blocked))


def test_a_policy_it_cannot_enforce_fails_the_run(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    sctp = PLATFORM.replace(
        "ports: [{port: 53, protocol: UDP}",
        "ports: [{port: 9, protocol: SCTP}, {port: 53, protocol: UDP}",
    )
    cluster = rehearsal(timeout=15)
    with pytest.raises(
        RehearsalError, match="NetworkPolicy/shop/gateway: protocol SCTP cannot be enforced"
    ):
        cluster.install(render(sctp))
