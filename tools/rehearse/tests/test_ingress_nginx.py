"""The NGINX config from routing rules: path types, hosts, limits, and 404 for the rest."""

import textwrap

import pytest

from shopstack_rehearse import ingress_nginx
from shopstack_rehearse.manifests import ManifestError, parse_stream


def service_port(namespace: str, name: str, port: object) -> tuple[str, int]:
    return {"web": "10.0.0.100", "docs": "10.0.0.101"}[name], 80


def config(text: str) -> str:
    routes = ingress_nginx.Routes()
    objects = parse_stream(textwrap.dedent(text), "shop").objects
    policies = [o for o in objects if o.kind == "ClientSettingsPolicy"]
    for obj in objects:
        if obj.kind == "Ingress":
            ingress_nginx.from_ingress(obj, routes, service_port)
        elif obj.kind == "HTTPRoute":
            ingress_nginx.from_http_route(obj, routes, service_port, policies)
    return ingress_nginx.render(routes)


def test_ingress_path_types_become_locations_with_the_annotations() -> None:
    text = config("""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: edge
          annotations:
            nginx.ingress.kubernetes.io/proxy-body-size: 8m
            nginx.ingress.kubernetes.io/proxy-read-timeout: "30"
        spec:
          rules:
            - host: shop.example
              http:
                paths:
                  - path: /api
                    pathType: Prefix
                    backend: {service: {name: web, port: {number: 80}}}
                  - path: /docs
                    pathType: Exact
                    backend: {service: {name: docs, port: {number: 80}}}
                  - path: /raw
                    pathType: ImplementationSpecific
                    backend: {service: {name: web, port: {number: 80}}}
    """)
    assert "server_name shop.example;" in text
    assert "location = /api {" in text
    assert "location /api/ {" in text
    assert "location = /docs {" in text
    assert "location /docs/" not in text
    assert "location /raw {" in text
    assert "client_max_body_size 8m;" in text
    # The controller's own idle timeout for its pool of connections to the pods.
    assert "keepalive_timeout 60s;" in text
    assert "proxy_read_timeout 30s;" in text
    # Nothing routes "/" on that host, nor anything on any other host: 404 problem+json.
    assert text.count("return 404") == 2
    assert "application/problem+json" in text


def test_http_route_with_weights_timeouts_and_a_client_settings_policy() -> None:
    text = config("""
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: edge}
        spec:
          hostnames: [shop.example]
          rules:
            - matches: [{path: {type: PathPrefix, value: /}}]
              backendRefs: [{name: web, port: 80, weight: 3}, {name: docs, port: 80, weight: 1}]
              timeouts: {request: 20s}
        ---
        apiVersion: gateway.nginx.org/v1alpha1
        kind: ClientSettingsPolicy
        metadata: {name: body}
        spec:
          targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: edge}
          body: {maxSize: 2m}
    """)
    assert "server 10.0.0.100:80 weight=3;" in text
    assert "server 10.0.0.101:80 weight=1;" in text
    assert "proxy_read_timeout 20s;" in text
    assert "client_max_body_size 2m;" in text
    # The default server (every other host) routes nothing.
    default = text.split("server_name _;")[1].split("server {")[0]
    assert "return 404" in default
    assert "proxy_pass" not in default


INGRESS_WITH_NEXT_UPSTREAM = """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: edge
      annotations:
        nginx.ingress.kubernetes.io/proxy-next-upstream: "{cases}"
        nginx.ingress.kubernetes.io/proxy-next-upstream-tries: "2"
    spec:
      rules:
        - http:
            paths:
              - path: /
                pathType: Prefix
                backend: {{service: {{name: web, port: {{number: 80}}}}}}
"""


def test_next_upstream_annotations_become_the_location_s_retry_rule() -> None:
    text = config(INGRESS_WITH_NEXT_UPSTREAM.format(cases="error"))
    assert "proxy_next_upstream error;" in text
    assert "proxy_next_upstream_tries 2;" in text


def test_a_next_upstream_case_nginx_does_not_know_is_refused() -> None:
    with pytest.raises(ManifestError, match="proxy-next-upstream"):
        config(INGRESS_WITH_NEXT_UPSTREAM.format(cases="error sometimes"))
