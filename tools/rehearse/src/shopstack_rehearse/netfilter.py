"""Each pod's iptables rules: its Services' routing (what kube-proxy programs) and its
NetworkPolicies (what a policy-enforcing CNI programs).

Every pod holds its own network namespace, so its rules see the real source and destination
of every packet:

* ``RH-SVC`` (nat OUTPUT) sends a new connection to a Service address and port to one
  ready endpoint, at random, on the endpoint's target port. Established connections keep
  their endpoint (conntrack), so a pod leaving a Service drains instead of breaking.
* ``RH-IN`` (filter INPUT) admits what the policies selecting the pod allow, once any policy
  isolates it for ingress; the node (the kubelet's probes) is always admitted.
* ``RH-OUT`` (filter OUTPUT) does the same for egress, after the Service translation, so
  policies match pod addresses as in a cluster. The engine's DNS answers on a loopback
  address inside the pod; it stands for kube-dns (``kube-system``, ``k8s-app=kube-dns``),
  and a pod isolated for egress reaches it only if a policy allows that peer on port 53.

Denied packets are rejected rather than dropped, so a denied connection fails at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shopstack_rehearse.manifests import KubeObject, selector_matches

DNS_ADDRESS = "127.0.0.11"
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_KEY = "kube-dns"
DNS_PORT_NAMES = {"dns": 53, "dns-tcp": 53}


class PolicyError(ValueError):
    """A NetworkPolicy that the rehearsal cannot enforce: the run must not pass quietly."""


@dataclass
class PodAddress:
    """What the rules need to know about one pod."""

    key: str
    namespace: str
    labels: dict[str, str]
    ip: str
    named_ports: dict[str, tuple[int, str]] = field(default_factory=dict)
    serving: bool = False  # ready and not terminating: an endpoint of its Services
    all_ports: set[tuple[int, str]] = field(default_factory=set)


@dataclass
class ServiceAddress:
    namespace: str
    name: str
    ip: str  # "" for a headless Service
    selector: dict[str, str]
    ports: list[dict[str, Any]]
    publish_not_ready: bool = False


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int


def endpoints(
    service: ServiceAddress, port: Mapping[str, Any], pods: Iterable[PodAddress]
) -> list[Endpoint]:
    """The pods a Service port sends to: selected, serving, with the target port resolved
    (a named target port that a pod does not have leaves that pod out, as in Kubernetes)."""
    target = port.get("targetPort", port["port"])
    protocol = str(port.get("protocol", "TCP"))
    found = []
    for pod in pods:
        if pod.namespace != service.namespace or not service.selector:
            continue
        if not all(pod.labels.get(k) == v for k, v in service.selector.items()):
            continue
        if not (pod.serving or service.publish_not_ready):
            continue
        if isinstance(target, int) or str(target).isdigit():
            found.append(Endpoint(pod.ip, int(target)))
        elif str(target) in pod.named_ports and pod.named_ports[str(target)][1] == protocol:
            found.append(Endpoint(pod.ip, pod.named_ports[str(target)][0]))
    return sorted(found, key=lambda e: (e.ip, e.port))


def service_rules(
    services: Iterable[ServiceAddress], pods: list[PodAddress]
) -> tuple[list[str], list[str]]:
    """nat rules that route Service addresses, and filter rules rejecting ports with no
    endpoint (kube-proxy's REJECT)."""
    nat: list[str] = []
    reject: list[str] = []
    for service in services:
        if not service.ip:
            continue
        for port in service.ports:
            protocol = str(port.get("protocol", "TCP")).lower()
            match = f"-d {service.ip}/32 -p {protocol} -m {protocol} --dport {int(port['port'])}"
            targets = endpoints(service, port, pods)
            if not targets:
                reject.append(f"-A RH-OUT {match} -j REJECT")
                continue
            for index, target in enumerate(targets):
                remaining = len(targets) - index
                chance = (
                    ""
                    if remaining == 1
                    else f" -m statistic --mode random --probability {1 / remaining:.5f}"
                )
                nat.append(
                    f"-A RH-SVC {match}{chance} -j DNAT --to-destination {target.ip}:{target.port}"
                )
    return nat, reject


@dataclass
class Cluster:
    """The pods, Services, policies and namespace labels the rules are computed from."""

    pods: list[PodAddress]
    services: list[ServiceAddress]
    policies: list[KubeObject]
    namespace_labels: dict[str, dict[str, str]]
    node_ip: str

    def namespace_matches(self, selector: Mapping[str, Any] | None, namespace: str) -> bool:
        labels = {
            "kubernetes.io/metadata.name": namespace,
            **self.namespace_labels.get(namespace, {}),
        }
        return selector_matches(selector, labels)


def _types(policy: KubeObject) -> set[str]:
    declared = policy.spec.get("policyTypes")
    if declared:
        return {str(t) for t in declared}
    return {"Ingress"} | ({"Egress"} if "egress" in policy.spec else set())


def selecting(cluster: Cluster, pod: PodAddress, direction: str) -> list[KubeObject]:
    return [
        policy
        for policy in cluster.policies
        if policy.namespace == pod.namespace
        and direction in _types(policy)
        and selector_matches(policy.spec.get("podSelector") or {}, pod.labels)
    ]


@dataclass(frozen=True)
class Peer:
    """One side a rule admits: a pod address, or a CIDR with exceptions."""

    cidr: str
    excepts: tuple[str, ...] = ()
    pod: PodAddress | None = None


def _peers(
    cluster: Cluster, policy: KubeObject, entries: list[dict[str, Any]] | None
) -> list[Peer] | None:
    """The peers of one rule; None means every source or destination."""
    if not entries:
        return None
    peers: list[Peer] = []
    virtual_dns = PodAddress(DNS_KEY, DNS_NAMESPACE, DNS_LABELS, DNS_ADDRESS)
    for entry in entries:
        if "ipBlock" in entry:
            block = entry["ipBlock"]
            try:
                cidr = str(ipaddress.ip_network(str(block["cidr"]), strict=False))
                excepts = tuple(
                    str(ipaddress.ip_network(str(e), strict=False))
                    for e in block.get("except") or []
                )
            except ValueError as error:
                raise PolicyError(f"{policy.ref}: ipBlock {block!r}: {error}") from error
            if ipaddress.ip_network(cidr).version != 4:
                raise PolicyError(
                    f"{policy.ref}: IPv6 ipBlock {cidr} cannot be enforced (IPv4 only)"
                )
            peers.append(Peer(cidr, excepts))
            continue
        pod_selector = entry.get("podSelector")
        namespace_selector = entry.get("namespaceSelector")
        for candidate in [*cluster.pods, virtual_dns]:
            if namespace_selector is None:
                if candidate.namespace != policy.namespace:
                    continue
            elif not cluster.namespace_matches(namespace_selector, candidate.namespace):
                continue
            if pod_selector is not None and not selector_matches(pod_selector, candidate.labels):
                continue
            if candidate is virtual_dns or candidate.ip:
                peers.append(Peer(f"{candidate.ip}/32", (), candidate))
    return peers


def _port_matches(
    policy: KubeObject, ports: list[dict[str, Any]] | None, owner: PodAddress | None
) -> list[str] | None:
    """iptables port matches of one rule for destination pod ``owner`` (named ports are
    resolved on it); None means every port. An empty list: the rule admits nothing there."""
    if not ports:
        return None
    matches = []
    for entry in ports:
        protocol = str(entry.get("protocol", "TCP"))
        if protocol not in {"TCP", "UDP"}:
            raise PolicyError(
                f"{policy.ref}: protocol {protocol} cannot be enforced (TCP and UDP only)"
            )
        proto = protocol.lower()
        port = entry.get("port")
        if port is None:
            matches.append(f"-p {proto}")
            continue
        if isinstance(port, str) and not port.isdigit():
            if owner is None:
                raise PolicyError(
                    f"{policy.ref}: named port {port!r} towards an address block cannot be "
                    "resolved (only pods have named ports)"
                )
            if owner.key == DNS_KEY:
                number = DNS_PORT_NAMES.get(port)
                if number is None:
                    continue
            elif port not in owner.named_ports or owner.named_ports[port][1] != protocol:
                continue
            else:
                number = owner.named_ports[port][0]
            matches.append(f"-p {proto} -m {proto} --dport {number}")
            continue
        end = entry.get("endPort")
        span = f"{int(port)}:{int(end)}" if end else f"{int(port)}"
        matches.append(f"-p {proto} -m {proto} --dport {span}")
    return matches


CONNTRACK = "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
DENY = ["-p tcp -j REJECT --reject-with tcp-reset", "-j REJECT"]


@dataclass
class _Chains:
    """The filter rules of one pod, with a chain per address block that has exceptions."""

    rules: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.rules.append(line)

    def admit(self, chain: str, flag: str, peer: Peer | None, ports: list[str] | None) -> None:
        port_list = [""] if ports is None else [f" {p}" for p in ports]
        address = f" {flag} {peer.cidr}" if peer else ""
        if peer is not None and peer.excepts:
            block = f"RH-B{len(self.blocks) + 1}"
            self.blocks.append(block)
            self.add(f"-A {chain}{address} -j {block}")
            for excluded in peer.excepts:
                self.add(f"-A {block} {flag} {excluded} -j RETURN")
            for port in port_list:
                self.add(f"-A {block}{port} -j ACCEPT")
            return
        for port in port_list:
            self.add(f"-A {chain}{address}{port} -j ACCEPT")


def _ingress(cluster: Cluster, pod: PodAddress, chains: _Chains) -> None:
    chains.add(f"-A RH-IN {CONNTRACK}")
    chains.add("-A RH-IN -i lo -j ACCEPT")
    chains.add(f"-A RH-IN -s {cluster.node_ip}/32 -j ACCEPT")
    policies = selecting(cluster, pod, "Ingress")
    if not policies:
        chains.add("-A RH-IN -j ACCEPT")
        return
    for policy in policies:
        for rule in policy.spec.get("ingress") or []:
            peers = _peers(cluster, policy, rule.get("from"))
            ports = _port_matches(policy, rule.get("ports"), pod)
            if ports == []:
                continue
            for peer in [None] if peers is None else peers:
                chains.admit("RH-IN", "-s", peer, ports)
    for line in DENY:
        chains.add(f"-A RH-IN {line}")


def _egress(cluster: Cluster, pod: PodAddress, chains: _Chains, no_endpoint: list[str]) -> None:
    chains.add(f"-A RH-OUT {CONNTRACK}")
    for line in no_endpoint:
        chains.add(line)
    policies = selecting(cluster, pod, "Egress")
    if not policies:
        chains.add("-A RH-OUT -j ACCEPT")
        return
    allowed = _Chains(blocks=chains.blocks)
    dns = False
    for policy in policies:
        for rule in policy.spec.get("egress") or []:
            peers = _peers(cluster, policy, rule.get("to"))
            if peers is None and _has_named(rule):
                # A named port towards every destination: every pod that has it.
                peers = [Peer(f"{p.ip}/32", (), p) for p in cluster.pods]
            elif peers is None:
                dns = dns or _allows_dns(rule)
                allowed.admit("RH-OUT", "-d", None, _port_matches(policy, rule.get("ports"), None))
                continue
            for peer in peers:
                ports = _port_matches(policy, rule.get("ports"), peer.pod)
                if ports == []:
                    continue
                if peer.pod is not None and peer.pod.key == DNS_KEY:
                    dns = dns or _allows_dns(rule)
                else:
                    allowed.admit("RH-OUT", "-d", peer, ports)
    # The engine's DNS on loopback stands for kube-dns: decided before loopback is opened.
    chains.add(f"-A RH-OUT -d {DNS_ADDRESS}/32 -j {'ACCEPT' if dns else 'REJECT'}")
    chains.rules += allowed.rules
    chains.add("-A RH-OUT -o lo -j ACCEPT")
    for line in DENY:
        chains.add(f"-A RH-OUT {line}")


def _has_named(rule: Mapping[str, Any]) -> bool:
    return any(
        isinstance(p.get("port"), str) and not str(p["port"]).isdigit()
        for p in rule.get("ports") or []
    )


def _allows_dns(rule: Mapping[str, Any]) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for entry in ports:
        port = entry.get("port")
        if port is None or str(port) == "53" or port in DNS_PORT_NAMES:
            return True
        end = entry.get("endPort")
        if end and str(port).isdigit() and int(port) <= 53 <= int(end):
            return True
    return False


def ruleset(cluster: Cluster, pod: PodAddress) -> str:
    """The whole ``iptables-restore --noflush`` input for one pod."""
    nat, no_endpoint = service_rules(cluster.services, cluster.pods)
    chains = _Chains()
    _ingress(cluster, pod, chains)
    _egress(cluster, pod, chains, no_endpoint)
    lines = [
        *("*nat", ":RH-SVC - [0:0]", *nat, "COMMIT"),
        *("*filter", ":RH-IN - [0:0]", ":RH-OUT - [0:0]"),
        *(f":{block} - [0:0]" for block in chains.blocks),
        *chains.rules,
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


SETUP = (
    "iptables -N RH-IN && iptables -N RH-OUT && iptables -I INPUT -j RH-IN && "
    "iptables -I OUTPUT -j RH-OUT && iptables -t nat -N RH-SVC && "
    "iptables -t nat -I OUTPUT -j RH-SVC"
)
