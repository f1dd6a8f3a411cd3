"""Each pod's rules: Services routed to ready endpoints, policies admitting only their peers."""

import textwrap
from pathlib import Path

import pytest

from shopstack_rehearse.manifests import parse_stream
from shopstack_rehearse.netfilter import Cluster, PodAddress, PolicyError, ServiceAddress, ruleset

WEB = PodAddress("web-1", "shop", {"app": "web"}, "10.0.0.2", {"http": (8080, "TCP")}, serving=True)
WEB_UNREADY = PodAddress(
    "web-2", "shop", {"app": "web"}, "10.0.0.3", {"http": (8080, "TCP")}, serving=False
)
CLIENT = PodAddress("client-1", "shop", {"app": "client"}, "10.0.0.4", {}, serving=True)
EDGE = PodAddress("edge-1", "ingress-nginx", {"app": "edge"}, "10.0.0.5", {}, serving=True)
SERVICE = ServiceAddress(
    "shop", "web", "10.0.0.100", {"app": "web"}, [{"port": 80, "targetPort": "http"}]
)


def cluster(policies: str = "", services: list[ServiceAddress] | None = None) -> Cluster:
    objects = parse_stream(textwrap.dedent(policies), "shop").objects if policies else []
    return Cluster([WEB, WEB_UNREADY, CLIENT, EDGE], services or [SERVICE], objects, {}, "10.0.0.1")


def test_a_service_port_goes_to_the_ready_endpoints_target_port_only() -> None:
    rules = ruleset(cluster(), CLIENT)
    assert (
        "-A RH-SVC -d 10.0.0.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080"
        in rules
    )
    assert "10.0.0.3" not in rules
    assert "-A RH-IN -j ACCEPT" in rules
    assert "-A RH-OUT -j ACCEPT" in rules


def test_a_service_without_ready_endpoints_rejects() -> None:
    lonely = ServiceAddress("shop", "none", "10.0.0.101", {"app": "nothing"}, [{"port": 80}])
    assert "-A RH-OUT -d 10.0.0.101/32 -p tcp -m tcp --dport 80 -j REJECT" in ruleset(
        cluster(services=[lonely]), CLIENT
    )


MANIFESTS = Path(__file__).parent / "manifests"
POLICY = (MANIFESTS / "netfilter-policy.yaml").read_text()


def test_ingress_admits_the_named_peers_on_the_resolved_port_and_rejects_the_rest() -> None:
    rules = ruleset(cluster(POLICY), WEB)
    assert "-A RH-IN -s 10.0.0.4/32 -p tcp -m tcp --dport 8080 -j ACCEPT" in rules
    assert "-A RH-IN -s 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT" in rules
    assert "-A RH-IN -s 10.0.0.1/32 -j ACCEPT" in rules  # the node's probes
    assert rules.index("-A RH-IN -s 10.0.0.4/32") < rules.index("-A RH-IN -j REJECT")
    assert "10.0.0.3/32 -p tcp -m tcp --dport 8080 -j ACCEPT" not in rules


def test_egress_without_a_dns_rule_cuts_dns_and_ip_blocks_keep_their_exceptions() -> None:
    rules = ruleset(cluster(POLICY), WEB)
    assert "-A RH-OUT -d 127.0.0.11/32 -j REJECT" in rules
    assert "-A RH-OUT -d 10.9.0.0/16 -j RH-B1" in rules
    assert "-A RH-B1 -d 10.9.1.0/24 -j RETURN" in rules
    assert "-A RH-B1 -p tcp -m tcp --dport 5432 -j ACCEPT" in rules


def test_a_dns_rule_to_kube_dns_opens_the_engine_dns() -> None:
    dns = POLICY + (
        "    - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]\n"
        "      ports: [{port: 53, protocol: UDP}]\n"
    )
    assert "-A RH-OUT -d 127.0.0.11/32 -j ACCEPT" in ruleset(cluster(dns), WEB)


def test_a_policy_the_rules_cannot_express_fails_loudly() -> None:
    sctp = POLICY.replace("ports: [{port: 5432}]", "ports: [{port: 5432, protocol: SCTP}]")
    with pytest.raises(
        PolicyError, match="NetworkPolicy/shop/web: protocol SCTP cannot be enforced"
    ):
        ruleset(cluster(sctp), WEB)
    named = POLICY.replace("ports: [{port: 5432}]", "ports: [{port: postgres}]")
    with pytest.raises(PolicyError, match="named port 'postgres' towards an address block"):
        ruleset(cluster(named), WEB)
