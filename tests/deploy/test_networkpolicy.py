"""NetworkPolicy, evaluated: which pod may open a connection to which pod and port.

A small model of the NetworkPolicy semantics (policies add up; a pod selected by a policy of a
direction allows only what one of them lists; peers by pod selector, namespace selector, both,
or IP block; ports by number or name) run over what the chart renders, plus the pods outside
it that matter: the ingress controller, Prometheus, the cluster DNS, a stray pod in the
release's namespace and an address outside the cluster. The services trust the gateway's
identity headers because of what these tests pin down.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from .conftest import NAMESPACE, WORKLOAD_KINDS, Manifest, Render, of_kind

pytestmark = pytest.mark.deploy


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str | None  # None: an address outside the cluster
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ports: dict[str, int] = field(default_factory=dict, hash=False)  # container port names
    address: str = "10.96.0.10"


def _expression_holds(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    inside = labels.get(key) in expression["values"]
    return inside if operator == "In" else not inside


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in wanted.items()) and all(
        _expression_holds(expression, labels)
        for expression in selector.get("matchExpressions") or []
    )


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.address)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], _namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], other.labels)


def _port_matches(rule: dict[str, Any], target: Endpoint, port: int, protocol: str) -> bool:
    if not rule.get("ports"):
        return True
    for allowed in rule["ports"]:
        if allowed.get("protocol", "TCP") != protocol:
            continue
        number = allowed.get("port")
        if number is None or number == port or target.ports.get(str(number)) == port:
            return True
    return False


@dataclass
class Cluster:
    policies: list[Manifest]

    def _selecting(self, pod: Endpoint, direction: str) -> list[Manifest]:
        return [
            p
            for p in self.policies
            if pod.namespace == p["metadata"]["namespace"]
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and _matches(p["spec"]["podSelector"], pod.labels)
        ]

    def allows(self, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._egress(source, target, port, protocol) and self._ingress(
            source, target, port, protocol
        )

    def _egress(self, source: Endpoint, target: Endpoint, port: int, protocol: str) -> bool:
        if source.namespace is None:
            return True
        selecting = self._selecting(source, "Egress")
        if not selecting:
            return True
        return any(
            _port_matches(rule, target, port, protocol)
            and (
                "to" not in rule
                or any(
                    _peer_matches(peer, policy["metadata"]["namespace"], target)
                    for peer in rule["to"]
                )
            )
            for policy in selecting
            for rule in policy["spec"].get("egress") or []
        )

    def _ingress(self, source: Endpoint, target: Endpoint, port: int, protocol: str) -> bool:
        if target.namespace is None:
            return True
        selecting = self._selecting(target, "Ingress")
        if not selecting:
            return True
        return any(
            _port_matches(rule, target, port, protocol)
            and (
                "from" not in rule
                or any(
                    _peer_matches(peer, policy["metadata"]["namespace"], source)
                    for peer in rule["from"]
                )
            )
            for policy in selecting
            for rule in policy["spec"].get("ingress") or []
        )


def _pods(docs: list[Manifest]) -> dict[str, Endpoint]:
    pods = {}
    for doc in docs:
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        template = doc if doc["kind"] == "Pod" else doc["spec"]["template"]
        spec = template["spec"]
        ports = {
            port["name"]: port["containerPort"]
            for container in spec["containers"]
            for port in container.get("ports", [])
            if "name" in port
        }
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        pods[component] = Endpoint(component, NAMESPACE, template["metadata"]["labels"], ports)
    return pods


OUTSIDE = {
    "ingress-controller": Endpoint(
        "ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
    ),
    "prometheus": Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "dns": Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"}),
    # A pod someone else runs in the release's namespace, and one elsewhere.
    "stray": Endpoint("stray", NAMESPACE, {"app": "debug"}),
    "elsewhere": Endpoint("elsewhere", "other-team", {"app": "client"}),
    # The managed database production values name (ipBlock 10.20.0.0/24), and the internet.
    "managed-db": Endpoint("managed-db", None, address="10.20.0.5"),
    "internet": Endpoint("internet", None, address="93.184.216.34"),
}

SERVICES = ("gateway", "users", "orders")


def _world(render: Render, values: str) -> tuple[Cluster, dict[str, Endpoint]]:
    docs = render(values)
    return Cluster(of_kind(docs, "NetworkPolicy")), {**_pods(docs), **OUTSIDE}


# (source, target, port): what must get through, with the in-chart data stores (dev).
DEV_ALLOWED = [
    ("ingress-controller", "gateway", 8000),
    ("test", "gateway", 8000),
    ("gateway", "users", 8000),
    ("gateway", "orders", 8000),
    ("gateway", "redis", 6379),
    ("users", "postgresql", 5432),
    ("users", "redis", 6379),
    ("orders", "postgresql", 5432),
    ("orders", "redis", 6379),
    ("users-migrate", "postgresql", 5432),
    ("orders-migrate", "postgresql", 5432),
    ("users-migrate", "redis", 6379),
    *[("prometheus", service, 9090) for service in SERVICES],
    # orders' outbox relay: PostgreSQL and Redis, scraped by Prometheus.
    ("orders-relay", "postgresql", 5432),
    ("orders-relay", "redis", 6379),
    ("prometheus", "orders-relay", 9090),
]
DEV_DENIED = [
    # Nothing but the gateway reaches the services that trust its identity headers.
    *[
        (peer, service, 8000)
        for peer in ("stray", "elsewhere", "ingress-controller", "prometheus", "test")
        for service in ("users", "orders")
    ],
    ("stray", "gateway", 8000),
    ("elsewhere", "gateway", 8000),
    ("users", "orders", 8000),
    ("orders", "users", 8000),
    # Metrics only for Prometheus.
    *[
        (peer, service, 9090)
        for peer in ("ingress-controller", "stray", "gateway")
        for service in SERVICES
    ],
    # The data stores only for their clients.
    ("gateway", "postgresql", 5432),
    ("stray", "postgresql", 5432),
    ("stray", "redis", 6379),
    ("test", "users", 8000),
    *[(service, "internet", 443) for service in SERVICES],
    ("postgresql", "internet", 443),
    # The relay talks to nothing but its data stores.
    ("orders-relay", "orders", 8000),
    ("orders-relay", "users", 8000),
    ("orders-relay", "internet", 443),
    ("stray", "orders-relay", 9090),
]


@pytest.mark.parametrize(("source", "target", "port"), DEV_ALLOWED)
def test_dev_lets_through_what_the_platform_needs(
    render: Render, source: str, target: str, port: int
) -> None:
    cluster, pods = _world(render, "dev")
    assert cluster.allows(pods[source], pods[target], port)


@pytest.mark.parametrize(("source", "target", "port"), DEV_DENIED)
def test_dev_stops_everything_else(render: Render, source: str, target: str, port: int) -> None:
    cluster, pods = _world(render, "dev")
    assert not cluster.allows(pods[source], pods[target], port)


@pytest.mark.parametrize("service", SERVICES)
def test_every_pod_can_resolve_names(render: Render, service: str) -> None:
    cluster, pods = _world(render, "dev")
    assert cluster.allows(pods[service], pods["dns"], 53, "UDP")
    assert not cluster.allows(pods[service], pods["dns"], 80)


def test_production_reaches_the_managed_database_and_nothing_else_outside(render: Render) -> None:
    cluster, pods = _world(render, "gateway-api")
    for service in ("users", "orders", "users-migrate", "orders-migrate"):
        assert cluster.allows(pods[service], pods["managed-db"], 5432)
        assert not cluster.allows(pods[service], pods["internet"], 5432)
    assert not cluster.allows(pods["gateway"], pods["managed-db"], 5432)
    # The OTLP endpoint's port is open to every service; nothing else is.
    for service in SERVICES:
        assert cluster.allows(pods[service], pods["internet"], 4318)
        assert not cluster.allows(pods[service], pods["internet"], 443)


@pytest.mark.parametrize("values", ["dev", "production", "gateway-api", "in-chart-databases"])
def test_every_policy_selects_the_pods_it_is_named_for(render: Render, values: str) -> None:
    docs = render(values)
    pods = _pods(docs)
    for policy in of_kind(docs, "NetworkPolicy"):
        selected = {
            c for c, pod in pods.items() if _matches(policy["spec"]["podSelector"], pod.labels)
        }
        name = policy["metadata"]["name"].removeprefix("shop-shopstack-")
        expected = {
            "default-deny": set(pods),
            "migrate": {"users-migrate", "orders-migrate"},
        }.get(name, {name})
        assert selected == expected, policy["metadata"]["name"]
    # Every pod of the release is under the default deny, in both directions.
    (deny,) = [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("deny")]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]


@pytest.mark.parametrize("values", ["dev", "production", "gateway-api", "in-chart-databases"])
def test_no_route_reaches_a_metrics_port(render: Render, values: str) -> None:
    docs = render(values)
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    backends: list[tuple[str, Any]] = []
    for ingress in of_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                service = path["backend"]["service"]
                backends.append((service["name"], service["port"]))
    for route in of_kind(docs, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            backends += [(ref["name"], {"number": ref["port"]}) for ref in rule["backendRefs"]]
    assert backends
    for name, port in backends:
        (target,) = [
            p
            for p in services[name]["spec"]["ports"]
            if p["name"] == port.get("name") or p["port"] == port.get("number")
        ]
        assert target["targetPort"] == "http", (name, port)
    for doc in of_kind(docs, "Ingress") + of_kind(docs, "HTTPRoute"):
        text = str(doc)
        for private in ("/metrics", "/readyz", "/healthz", "/admin"):
            assert private not in text


@pytest.mark.parametrize("console", [False, True])
def test_users_reaches_the_gateway_only_for_its_console(render: Render, console: bool) -> None:
    docs = render("dev", {"users.console.enabled": str(console).lower()})
    cluster, pods = Cluster(of_kind(docs, "NetworkPolicy")), _pods(docs)
    assert cluster.allows(pods["users"], pods["gateway"], 8000) is console
    # Its orders still come through the gateway only.
    assert not cluster.allows(pods["users"], pods["orders"], 8000)
