"""Ingress and HTTPRoute through the rehearsal's NGINX: what the rules route, and 404 for
everything else."""

import ipaddress
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
ROUTED = (MANIFESTS / "ingress-routed.yaml").read_text()


def test_only_routed_hosts_and_paths_reach_the_service(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(ROUTED))
    # The controller has an address of its own network, which a chart can trust by name.
    assert cluster.nginx is not None
    assert ipaddress.ip_address(cluster.nginx.ip) in ipaddress.ip_network(cluster.ingress_cidr)
    (web,) = cluster.pods("Deployment/shop/web")
    assert ipaddress.ip_address(web.ip) not in ipaddress.ip_network(cluster.ingress_cidr)
    assert any(
        "Ingress/shop/other-class: class 'traefik' is not served" in note for note in cluster.notes
    )
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        for path in ("/api", "/api/", "/api/products/1", "/exact"):
            answer = client.get(path, headers={"Host": "shop.example"})
            assert answer.status_code == 200, (path, answer.text)
            assert answer.text.endswith(f" {path}"), (path, answer.text)
        assert client.get("/v1/x", headers={"Host": "api.example"}).status_code == 200
        for host, path in (
            ("shop.example", "/apix"),
            ("shop.example", "/exact/more"),
            ("shop.example", "/"),
            ("api.example", "/api"),
            ("elsewhere.example", "/api"),
            ("elsewhere.example", "/"),
        ):
            answer = client.get(path, headers={"Host": host})
            assert answer.status_code == 404, (host, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == 404
        assert (
            client.post(
                "/api/upload", content=b"x" * 512, headers={"Host": "shop.example"}
            ).status_code
            == 200
        )
        assert (
            client.post(
                "/api/upload", content=b"x" * 4096, headers={"Host": "shop.example"}
            ).status_code
            == 413
        )
        # The HTTPRoute has no body-size policy: NGINX's 1m default.
        assert (
            client.post(
                "/v1/upload", content=b"x" * 4096, headers={"Host": "api.example"}
            ).status_code
            == 200
        )
