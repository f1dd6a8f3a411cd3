"""What the rehearsal models, field by field, and the report of everything it does not.

Every rendered object is walked against the tree below. A field the tree marks MODELLED is
acted on; an ``Ignored`` field is accepted and listed (it cannot change whether the pods
start and talk, e.g. scheduling on a one-node rehearsal); a ``Fatal`` field, or any field or
kind the tree does not know, stops the run before anything starts, so a new chart feature
cannot pass untested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shopstack_rehearse.manifests import KubeObject, Manifests


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Fatal:
    reason: str


class _Modelled:
    def __repr__(self) -> str:
        return "MODELLED"


class _AnyValue:
    """A subtree accepted whole (labels, annotations, opaque data)."""


MODELLED = _Modelled()
ANY = _AnyValue()
Tree = dict[str, Any]

SCHEDULING = Ignored("one node: scheduling and placement are not modelled")
NO_API = Ignored("no API server: nothing in the pod talks to Kubernetes")
NO_REGISTRY = Ignored("no registry: every image must already be in the local engine")

SELECTOR: Tree = {"matchLabels": ANY, "matchExpressions": ANY}
METADATA: Tree = {
    "name": MODELLED,
    "namespace": MODELLED,
    "labels": ANY,
    "annotations": ANY,
    "generateName": Fatal("objects are created by name"),
    "finalizers": NO_API,
    "ownerReferences": NO_API,
}
TEMPLATE_METADATA: Tree = {
    "labels": ANY,
    "annotations": ANY,
    "name": Ignored("pods are named by their controller"),
}

PORT_REF = MODELLED
HTTP_GET: Tree = {
    "path": MODELLED,
    "port": PORT_REF,
    "scheme": MODELLED,
    "httpHeaders": ANY,
    "host": Fatal("probes go to the pod IP"),
}
TCP_SOCKET: Tree = {"port": PORT_REF, "host": Fatal("probes go to the pod IP")}
EXEC: Tree = {"command": MODELLED}
PROBE: Tree = {
    "httpGet": HTTP_GET,
    "tcpSocket": TCP_SOCKET,
    "exec": EXEC,
    "grpc": Fatal("gRPC probes are not modelled"),
    "initialDelaySeconds": MODELLED,
    "periodSeconds": MODELLED,
    "timeoutSeconds": MODELLED,
    "successThreshold": MODELLED,
    "failureThreshold": MODELLED,
    "terminationGracePeriodSeconds": MODELLED,
}
HANDLER: Tree = {
    "exec": EXEC,
    "httpGet": HTTP_GET,
    "sleep": {"seconds": MODELLED},
    "tcpSocket": Fatal("a tcpSocket lifecycle handler is deprecated and not modelled"),
}
SECURITY_CONTEXT_COMMON: Tree = {
    "runAsUser": MODELLED,
    "runAsGroup": MODELLED,
    "runAsNonRoot": MODELLED,
    "seccompProfile": {"type": MODELLED, "localhostProfile": Fatal("no local seccomp profiles")},
    "seLinuxOptions": Ignored("no SELinux on the rehearsal node"),
    "appArmorProfile": Ignored("no AppArmor on the rehearsal node"),
    "windowsOptions": Fatal("Windows pods are not modelled"),
}
CONTAINER_SECURITY_CONTEXT: Tree = {
    **SECURITY_CONTEXT_COMMON,
    "readOnlyRootFilesystem": MODELLED,
    "allowPrivilegeEscalation": MODELLED,
    "privileged": MODELLED,
    "capabilities": {"drop": MODELLED, "add": MODELLED},
    "procMount": Ignored("the default proc mount"),
}
POD_SECURITY_CONTEXT: Tree = {
    **SECURITY_CONTEXT_COMMON,
    "fsGroup": MODELLED,
    "supplementalGroups": MODELLED,
    "fsGroupChangePolicy": Ignored("ownership is always applied, as with Always"),
    "sysctls": Fatal("sysctls are not modelled"),
    "supplementalGroupsPolicy": Fatal("supplementalGroupsPolicy is not modelled"),
}
KEY_REF: Tree = {"name": MODELLED, "key": MODELLED, "optional": MODELLED}
CONTAINER: Tree = {
    "name": MODELLED,
    "image": MODELLED,
    "imagePullPolicy": NO_REGISTRY,
    "command": MODELLED,
    "args": MODELLED,
    "workingDir": MODELLED,
    "env": {
        "name": MODELLED,
        "value": MODELLED,
        "valueFrom": {
            "secretKeyRef": KEY_REF,
            "configMapKeyRef": KEY_REF,
            "fieldRef": {"fieldPath": MODELLED, "apiVersion": MODELLED},
            "resourceFieldRef": Fatal("resourceFieldRef is not modelled"),
            "fileKeyRef": Fatal("fileKeyRef is not modelled"),
        },
    },
    "envFrom": {
        "prefix": MODELLED,
        "configMapRef": {"name": MODELLED, "optional": MODELLED},
        "secretRef": {"name": MODELLED, "optional": MODELLED},
    },
    "ports": {
        "name": MODELLED,
        "containerPort": MODELLED,
        "protocol": MODELLED,
        "hostPort": Fatal("host ports are not modelled"),
        "hostIP": Fatal("host ports are not modelled"),
    },
    "resources": {
        "limits": {"cpu": MODELLED, "memory": MODELLED, "*": Fatal("only cpu and memory limits")},
        "requests": Ignored("requests only place pods; the one node takes every pod"),
        "claims": Fatal("dynamic resource claims are not modelled"),
    },
    "volumeMounts": {
        "name": MODELLED,
        "mountPath": MODELLED,
        "readOnly": MODELLED,
        "subPath": MODELLED,
        "subPathExpr": Fatal("subPathExpr is not modelled"),
        "mountPropagation": Fatal("mount propagation is not modelled"),
        "recursiveReadOnly": Ignored("read-only mounts are read-only all the way down"),
    },
    "volumeDevices": Fatal("block devices are not modelled"),
    "livenessProbe": PROBE,
    "readinessProbe": PROBE,
    "startupProbe": PROBE,
    "lifecycle": {
        "preStop": HANDLER,
        "postStart": Fatal("postStart hooks are not modelled"),
        "stopSignal": Fatal("a stop signal other than SIGTERM is not modelled"),
    },
    "securityContext": CONTAINER_SECURITY_CONTEXT,
    "terminationMessagePath": Ignored("termination messages are not collected; logs are"),
    "terminationMessagePolicy": Ignored("termination messages are not collected; logs are"),
    "stdin": Fatal("interactive containers are not modelled"),
    "stdinOnce": Fatal("interactive containers are not modelled"),
    "tty": Fatal("interactive containers are not modelled"),
    "resizePolicy": Ignored("resources are never resized in place"),
    "restartPolicy": Fatal("sidecar init containers are not modelled"),
}
VOLUME: Tree = {
    "name": MODELLED,
    "emptyDir": {"medium": MODELLED, "sizeLimit": MODELLED},
    "secret": {
        "secretName": MODELLED,
        "defaultMode": MODELLED,
        "optional": MODELLED,
        "items": {"key": MODELLED, "path": MODELLED, "mode": MODELLED},
    },
    "configMap": {
        "name": MODELLED,
        "defaultMode": MODELLED,
        "optional": MODELLED,
        "items": {"key": MODELLED, "path": MODELLED, "mode": MODELLED},
    },
    "persistentVolumeClaim": {"claimName": MODELLED, "readOnly": MODELLED},
}
POD_SPEC: Tree = {
    "containers": CONTAINER,
    "initContainers": CONTAINER,
    "volumes": VOLUME,
    "securityContext": POD_SECURITY_CONTEXT,
    "restartPolicy": MODELLED,
    "terminationGracePeriodSeconds": MODELLED,
    "hostname": MODELLED,
    "subdomain": MODELLED,
    "automountServiceAccountToken": NO_API,
    "serviceAccountName": NO_API,
    "serviceAccount": NO_API,
    "imagePullSecrets": NO_REGISTRY,
    "affinity": SCHEDULING,
    "nodeSelector": SCHEDULING,
    "nodeName": SCHEDULING,
    "tolerations": SCHEDULING,
    "topologySpreadConstraints": SCHEDULING,
    "priorityClassName": SCHEDULING,
    "priority": SCHEDULING,
    "preemptionPolicy": SCHEDULING,
    "schedulerName": SCHEDULING,
    "dnsPolicy": Ignored("names resolve through the engine's DNS with the cluster's search path"),
    "enableServiceLinks": Ignored("no {SVC}_SERVICE_HOST variables are injected"),
    "os": Ignored("every pod is a Linux pod"),
    "dnsConfig": Fatal("dnsConfig is not modelled"),
    "hostNetwork": Fatal("host networking is not modelled"),
    "hostPID": Fatal("host namespaces are not modelled"),
    "hostIPC": Fatal("host namespaces are not modelled"),
    "hostUsers": Fatal("user namespaces are not modelled"),
    "shareProcessNamespace": Fatal("a shared process namespace is not modelled"),
    "hostAliases": Fatal("hostAliases are not modelled"),
    "runtimeClassName": Fatal("runtime classes are not modelled"),
    "readinessGates": Fatal("readiness gates are not modelled"),
    "activeDeadlineSeconds": Fatal("a pod deadline is not modelled (a Job's is)"),
    "ephemeralContainers": Fatal("ephemeral containers are not modelled"),
    "overhead": Ignored("pod overhead only places pods"),
    "resourceClaims": Fatal("dynamic resource claims are not modelled"),
}
POD_TEMPLATE: Tree = {"metadata": TEMPLATE_METADATA, "spec": POD_SPEC}

KINDS: dict[str, Tree] = {
    "Deployment": {
        "replicas": MODELLED,
        "selector": SELECTOR,
        "template": POD_TEMPLATE,
        "strategy": {
            "type": MODELLED,
            "rollingUpdate": {"maxSurge": MODELLED, "maxUnavailable": MODELLED},
        },
        "minReadySeconds": MODELLED,
        "progressDeadlineSeconds": Ignored("the rehearsal's --timeout bounds every rollout"),
        "revisionHistoryLimit": Ignored("old ReplicaSets are not kept"),
        "paused": Fatal("paused rollouts are not modelled"),
    },
    "StatefulSet": {
        "replicas": MODELLED,
        "selector": SELECTOR,
        "serviceName": MODELLED,
        "template": POD_TEMPLATE,
        "volumeClaimTemplates": {
            "apiVersion": MODELLED,
            "kind": MODELLED,
            "metadata": {"name": MODELLED, "labels": ANY, "annotations": ANY},
            "spec": {
                "accessModes": Ignored("one node: every access mode is satisfied"),
                "resources": Ignored("volume sizes are not enforced"),
                "storageClassName": Ignored("every claim is a local Docker volume"),
                "volumeMode": Fatal("block volumes are not modelled"),
                "selector": Fatal("claim selectors are not modelled"),
                "dataSource": Fatal("volume data sources are not modelled"),
            },
        },
        "podManagementPolicy": MODELLED,
        "updateStrategy": {
            "type": MODELLED,
            "rollingUpdate": {
                "partition": MODELLED,
                "maxUnavailable": Ignored("StatefulSet pods are replaced one at a time"),
            },
        },
        "minReadySeconds": MODELLED,
        "revisionHistoryLimit": Ignored("old revisions are not kept"),
        "persistentVolumeClaimRetentionPolicy": Ignored("claims outlive the pods until clean-up"),
        "ordinals": Fatal("a start ordinal is not modelled"),
    },
    "Job": {
        "template": POD_TEMPLATE,
        "backoffLimit": MODELLED,
        "activeDeadlineSeconds": MODELLED,
        "ttlSecondsAfterFinished": Ignored("finished Jobs follow the hook delete policy"),
        "completions": Fatal("Jobs run one pod to completion"),
        "parallelism": Fatal("Jobs run one pod to completion"),
        "completionMode": Fatal("indexed Jobs are not modelled"),
        "podFailurePolicy": Fatal("pod failure policies are not modelled"),
        "backoffLimitPerIndex": Fatal("indexed Jobs are not modelled"),
        "suspend": Fatal("suspended Jobs are not modelled"),
        "manualSelector": Fatal("manual Job selectors are not modelled"),
        "selector": Fatal("manual Job selectors are not modelled"),
    },
    "Pod": POD_SPEC,
    "Service": {
        "type": MODELLED,
        "selector": ANY,
        "ports": {
            "name": MODELLED,
            "port": MODELLED,
            "targetPort": MODELLED,
            "protocol": MODELLED,
            "appProtocol": Ignored("application protocols are not interpreted"),
            "nodePort": Ignored("node ports are not opened; the Service is reached in-cluster"),
        },
        "clusterIP": MODELLED,
        "clusterIPs": Ignored("the rehearsal assigns the Service address"),
        "publishNotReadyAddresses": MODELLED,
        "sessionAffinity": Ignored("new connections go to a ready endpoint at random"),
        "sessionAffinityConfig": Ignored("client-IP affinity has no timeout here"),
        "internalTrafficPolicy": Ignored("one node: every policy is Local and Cluster at once"),
        "externalTrafficPolicy": Ignored("one node: every policy is Local and Cluster at once"),
        "ipFamilies": Ignored("IPv4 only"),
        "ipFamilyPolicy": Ignored("IPv4 only"),
        "trafficDistribution": Ignored("one node: distribution is moot"),
        "loadBalancerIP": Ignored("no load balancer: reached in-cluster"),
        "loadBalancerSourceRanges": Ignored("no load balancer: reached in-cluster"),
        "loadBalancerClass": Ignored("no load balancer: reached in-cluster"),
        "allocateLoadBalancerNodePorts": Ignored("no load balancer: reached in-cluster"),
        "externalName": Fatal("ExternalName Services are not modelled"),
        "externalIPs": Fatal("external IPs are not modelled"),
        "healthCheckNodePort": Ignored("no load balancer: reached in-cluster"),
    },
    "Secret": {},
    "ConfigMap": {},
    "Namespace": {},
    "PersistentVolumeClaim": {
        "accessModes": Ignored("one node: every access mode is satisfied"),
        "resources": Ignored("volume sizes are not enforced"),
        "storageClassName": Ignored("every claim is a local Docker volume"),
        "volumeMode": Fatal("block volumes are not modelled"),
        "selector": Fatal("claim selectors are not modelled"),
        "dataSource": Fatal("volume data sources are not modelled"),
        "volumeName": Fatal("binding to a named volume is not modelled"),
    },
    "Ingress": {
        "ingressClassName": MODELLED,
        "rules": {
            "host": MODELLED,
            "http": {
                "paths": {
                    "path": MODELLED,
                    "pathType": MODELLED,
                    "backend": {
                        "service": {
                            "name": MODELLED,
                            "port": {"number": MODELLED, "name": MODELLED},
                        },
                        "resource": Fatal("resource backends are not modelled"),
                    },
                }
            },
        },
        "tls": Ignored("the rehearsal's NGINX serves plain HTTP; TLS is not terminated"),
        "defaultBackend": Fatal("a default backend is not modelled: unrouted requests get 404"),
    },
    "HTTPRoute": {
        "parentRefs": Ignored("the rehearsal's one NGINX serves every route"),
        "hostnames": MODELLED,
        "rules": {
            "name": Ignored("rule names are labels only"),
            "matches": {
                "path": {"type": MODELLED, "value": MODELLED},
                "headers": Fatal("header matches are not modelled"),
                "queryParams": Fatal("query matches are not modelled"),
                "method": Fatal("method matches are not modelled"),
            },
            "backendRefs": {
                "name": MODELLED,
                "port": MODELLED,
                "kind": MODELLED,
                "group": MODELLED,
                "namespace": MODELLED,
                "weight": MODELLED,
                "filters": Fatal("backend filters are not modelled"),
            },
            "timeouts": {"request": MODELLED, "backendRequest": MODELLED},
            "filters": Fatal("route filters are not modelled"),
            "sessionPersistence": Fatal("session persistence is not modelled"),
            "retry": Fatal("retries are not modelled"),
        },
    },
    "ClientSettingsPolicy": {
        "targetRef": {"group": MODELLED, "kind": MODELLED, "name": MODELLED},
        "targetRefs": {"group": MODELLED, "kind": MODELLED, "name": MODELLED},
        "body": {"maxSize": MODELLED, "timeout": MODELLED},
        "keepAlive": Ignored("client keep-alive settings are not modelled"),
    },
    "NetworkPolicy": {
        "podSelector": SELECTOR,
        "policyTypes": MODELLED,
        "ingress": {
            "from": {"podSelector": SELECTOR, "namespaceSelector": SELECTOR, "ipBlock": ANY},
            "ports": {"port": MODELLED, "protocol": MODELLED, "endPort": MODELLED},
        },
        "egress": {
            "to": {"podSelector": SELECTOR, "namespaceSelector": SELECTOR, "ipBlock": ANY},
            "ports": {"port": MODELLED, "protocol": MODELLED, "endPort": MODELLED},
        },
    },
}

# Kinds the rehearsal accepts without running them, each with what that leaves untested.
IGNORED_KINDS: dict[str, str] = {
    "ServiceAccount": "no API server: no token is mounted and no RBAC is checked",
    "Role": "no API server: RBAC is not checked",
    "RoleBinding": "no API server: RBAC is not checked",
    "ClusterRole": "no API server: RBAC is not checked",
    "ClusterRoleBinding": "no API server: RBAC is not checked",
    "HorizontalPodAutoscaler": "its workload starts at minReplicas (capped); no scaling follows",
    "PodDisruptionBudget": "no evictions happen; rollouts follow the workload's strategy",
    "ServiceMonitor": "no Prometheus Operator: scraping is not rehearsed",
    "PodMonitor": "no Prometheus Operator: scraping is not rehearsed",
    "PrometheusRule": "no Prometheus Operator: rules are not loaded",
    "Gateway": "the rehearsal's one NGINX serves every HTTPRoute, whatever its parent",
    "IngressClass": "the rehearsal's NGINX serves the class it is told to (--ingress-class)",
}

# Secrets, ConfigMaps and Namespaces carry data, not behaviour: their top level is free.
FREE_TOP_LEVEL = {"Secret", "ConfigMap", "Namespace"}
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
INGRESS_NGINX_PREFIX = "nginx.ingress.kubernetes.io/"
# The ingress-nginx annotations the rehearsal's NGINX config honours.
INGRESS_ANNOTATIONS = {
    "proxy-body-size",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "proxy-connect-timeout",
    "proxy-request-buffering",
    "proxy-buffering",
    "proxy-next-upstream",
    "proxy-next-upstream-tries",
}


@dataclass(frozen=True)
class Finding:
    ref: str
    path: str
    reason: str
    fatal: bool

    def __str__(self) -> str:
        where = f"{self.ref} {self.path}" if self.path else self.ref
        return f"{where}: {self.reason}"


def survey(manifests: Manifests, allowed: Iterable[str] = ()) -> list[Finding]:
    """Every field and kind the rehearsal does not model, fatal ones first.

    ``allowed`` names findings to downgrade to non-fatal: a kind (``CronJob``), a field path
    (``spec.template.spec.dnsConfig``) or ``Kind/namespace/name path``."""
    accepted = set(allowed)
    findings: list[Finding] = []
    for obj in manifests.objects:
        findings.extend(_survey_object(obj))
    result = []
    for found in findings:
        finding = found
        if finding.fatal and (
            finding.path in accepted
            or (finding.ref.split("/")[0] in accepted and not finding.path)
            or f"{finding.ref} {finding.path}" in accepted
        ):
            finding = Finding(finding.ref, finding.path, finding.reason + " (allowed)", False)
        result.append(finding)
    return sorted(result, key=lambda f: (not f.fatal, f.ref, f.path))


def _survey_object(obj: KubeObject) -> list[Finding]:
    if obj.kind in IGNORED_KINDS:
        return [Finding(obj.ref, "", f"kind not run: {IGNORED_KINDS[obj.kind]}", fatal=False)]
    if obj.kind not in KINDS:
        return [Finding(obj.ref, "", "kind not modelled by the rehearsal", fatal=True)]
    findings: list[Finding] = []
    if obj.kind not in FREE_TOP_LEVEL:
        for key in obj.body:
            if key not in TOP_LEVEL:
                findings.append(Finding(obj.ref, key, "field not modelled", fatal=True))
    findings.extend(_walk(obj.ref, "metadata", obj.metadata, METADATA))
    if obj.kind in FREE_TOP_LEVEL:
        return findings
    findings.extend(_walk(obj.ref, "spec", obj.spec, KINDS[obj.kind]))
    if obj.kind == "Ingress":
        for name in obj.annotations:
            if name.startswith(INGRESS_NGINX_PREFIX):
                short = name.removeprefix(INGRESS_NGINX_PREFIX)
                if short not in INGRESS_ANNOTATIONS:
                    findings.append(
                        Finding(
                            obj.ref,
                            f"metadata.annotations[{name}]",
                            "ingress-nginx annotation not modelled",
                            fatal=True,
                        )
                    )
    return findings


def _walk(ref: str, path: str, value: Any, tree: Any) -> list[Finding]:
    if tree is MODELLED or tree is ANY:
        return []
    if isinstance(tree, Ignored):
        return [Finding(ref, path, f"not modelled: {tree.reason}", fatal=False)]
    if isinstance(tree, Fatal):
        return [Finding(ref, path, tree.reason, fatal=True)]
    if isinstance(value, list):
        return [
            f
            for index, item in enumerate(value)
            for f in _walk(ref, f"{path}[{index}]", item, tree)
        ]
    if not isinstance(value, dict):
        return []
    findings: list[Finding] = []
    for key, child in value.items():
        sub = tree.get(key, tree.get("*"))
        child_path = f"{path}.{key}"
        if sub is None:
            findings.append(Finding(ref, child_path, "field not modelled", fatal=True))
        else:
            findings.extend(_walk(ref, child_path, child, sub))
    return findings


def field_table() -> list[tuple[str, str, str, str]]:
    """Every field the tree names: (kind, path, "modelled" | "accepted" | "fatal", reason).
    Fields it does not name are fatal too."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(kind: str, path: str, tree: Any) -> None:
        if tree is MODELLED or tree is ANY:
            rows.append((kind, path, "modelled", ""))
        elif isinstance(tree, Ignored):
            rows.append((kind, path, "accepted", tree.reason))
        elif isinstance(tree, Fatal):
            rows.append((kind, path, "fatal", tree.reason))
        elif isinstance(tree, dict):
            for key, sub in tree.items():
                walk(kind, f"{path}.{key}" if path else key, sub)

    for kind, tree in KINDS.items():
        if kind in FREE_TOP_LEVEL:
            rows.append((kind, "(all)", "modelled", "data and labels"))
            continue
        walk(kind, "spec", tree)
    for kind, reason in IGNORED_KINDS.items():
        rows.append((kind, "(kind)", "accepted", reason))
    return rows


def markdown_table() -> str:
    """The field table as README markdown, pod template fields once (under Pod)."""
    lines = ["| kind | field | status | note |", "| --- | --- | --- | --- |"]
    for kind, path, status, reason in field_table():
        if kind in {"Deployment", "StatefulSet", "Job"} and path.startswith("spec.template.spec."):
            continue
        lines.append(f"| {kind} | `{path}` | {status} | {reason} |")
    return "\n".join(lines) + "\n"
