"""One rehearsal: a Docker network standing for a one-node cluster, the objects of a render
applied to it in Helm's order, and the day-2 operations run against it."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstack_rehearse import ingress_nginx
from shopstack_rehearse.controllers import (
    DeploymentController,
    JobOutcome,
    StatefulSetController,
    WorkloadController,
    run_job,
)
from shopstack_rehearse.coverage import Finding, survey
from shopstack_rehearse.engine import (
    VOLUMES_PREFIX,
    ImageMap,
    RehearsalError,
    Run,
    connect,
    infra_image,
)
from shopstack_rehearse.manifests import (
    KubeObject,
    ManifestError,
    Manifests,
    config_map_data,
    decode_secret,
)
from shopstack_rehearse.netfilter import Cluster, PodAddress, PolicyError, ServiceAddress, ruleset
from shopstack_rehearse.pods import (
    CLUSTER_DOMAIN,
    ContainerWorker,
    KubeletSettings,
    Node,
    Pod,
    exec_in,
)

log = logging.getLogger("shopstack_rehearse")

# Helm's install order: a release's objects are applied in it, hooks of one weight sorted by it.
KIND_ORDER = {
    kind: index
    for index, kind in enumerate(
        [
            "Namespace",
            "NetworkPolicy",
            "ResourceQuota",
            "LimitRange",
            "PodDisruptionBudget",
            "ServiceAccount",
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
            "Role",
            "RoleBinding",
            "Service",
            "Pod",
            "Deployment",
            "HorizontalPodAutoscaler",
            "StatefulSet",
            "Job",
            "Ingress",
            "HTTPRoute",
        ]
    )
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
ROUTE_KINDS = ("Ingress", "HTTPRoute", "ClientSettingsPolicy")
NGINX_CONFIG = "shopstack-rehearse-nginx"
NGINX_COMMAND = ["nginx", "-c", "/etc/rehearse-nginx/nginx.conf"]


@dataclass
class Options:
    namespace: str = "default"
    max_replicas: int = 2
    images: ImageMap = field(default_factory=ImageMap)
    infra_base: str = field(
        default_factory=lambda: os.environ.get("PYTHON_IMAGE", "python:3.11-slim")
    )
    nginx_image: str = field(default_factory=lambda: os.environ.get("NGINX_IMAGE", "nginx:1.27"))
    ingress_class: str = "nginx"
    ingress_namespace: str = "ingress-nginx"
    ingress_labels: dict[str, str] = field(
        default_factory=lambda: {
            "app.kubernetes.io/name": "ingress-nginx",
            "app.kubernetes.io/component": "controller",
        }
    )
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    timeout: float = 300.0
    wait: bool = True
    max_restarts: int = 5
    allow_unmodelled: tuple[str, ...] = ()
    publish_port: int | None = None
    kubelet: KubeletSettings = field(default_factory=KubeletSettings)
    job_backoff_seconds: float = 10.0


@dataclass
class ServiceState:
    obj: KubeObject
    vip: str
    holder: str


@dataclass
class HookRun:
    phase: str
    ref: str
    outcome: str
    seconds: float


class Rehearsal:
    """The rehearsal cluster. Use it as a context manager: leaving it removes everything."""

    def __init__(self, options: Options | None = None, client: Any = None) -> None:
        self.options = options or Options()
        self.client = client or connect()
        self.run = Run(self.client)
        self.notes: list[str] = []
        self.findings: list[Finding] = []
        self.hook_runs: list[HookRun] = []
        self.failures: list[str] = []
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.config_maps: dict[tuple[str, str], dict[str, bytes]] = {}
        self.claims: dict[tuple[str, str], str] = {}
        self.services: dict[tuple[str, str], ServiceState] = {}
        self.policies: list[KubeObject] = []
        self.routes: list[KubeObject] = []
        self.namespace_objects: dict[str, dict[str, str]] = {}
        self.controllers: dict[str, WorkloadController] = {}
        self.background: list[tuple[KubeObject, threading.Thread, list[JobOutcome]]] = []
        self.nginx: Pod | None = None
        self.ingress_cidr = ""
        self.nginx_port: int | None = None
        self._pods: list[Pod] = []
        self._net_lock = threading.RLock()
        self._control_lock = threading.RLock()
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self.volumes_root = Path(tempfile.mkdtemp(prefix=f"{VOLUMES_PREFIX}{self.run.run_id}-"))
        self.node: Node | None = None
        self._autoscaled: dict[str, int] = {}
        self._closed = False

    # --- set-up and clean-up --------------------------------------------------------------
    def __enter__(self) -> Rehearsal:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        image = infra_image(self.client, self.options.infra_base)
        network, gateway = self._create_network()
        self.node = Node(
            run=self.run,
            infra_image=image,
            network=network.name,
            node_ip=gateway,
            images=self.options.images,
            store=self,
            volumes_root=self.volumes_root,
            on_change=self._pod_changed,
            apply_rules=self._pod_changed,
            settings=self.options.kubelet,
        )
        self._loop = threading.Thread(target=self._control_loop, name="controllers", daemon=True)
        self._loop.start()
        log.info(
            "rehearsal %s: network %s, node %s", self.run.run_id, network.name, self.node.node_ip
        )

    def _create_network(self) -> tuple[Any, str]:
        """The cluster network: pods take addresses from the lower half of a subnet the
        engine picks; the top /28 is kept for the ingress controller, so a chart can name
        the controller's network (``ingress_cidr``) for trusted proxies or an ipBlock."""
        import docker

        probe = self.client.networks.create(
            self.run.name("probe"), driver="bridge", labels=self.run.labels(role="network")
        )
        probe.reload()
        config = probe.attrs["IPAM"]["Config"][0]
        probe.remove()
        subnet = ipaddress.ip_network(config["Subnet"])
        if subnet.version != 4 or subnet.prefixlen > 26:
            raise RehearsalError(
                f"the engine gave the subnet {subnet}; the rehearsal needs IPv4, /26 or larger"
            )
        pods = next(subnet.subnets(new_prefix=subnet.prefixlen + 1))
        self.ingress_cidr = str(list(subnet.subnets(new_prefix=28))[-1])
        gateway = config.get("Gateway") or str(next(subnet.hosts()))
        pool = docker.types.IPAMPool(subnet=str(subnet), iprange=str(pods), gateway=gateway)
        network = self.client.networks.create(
            self.run.name("cluster"),
            driver="bridge",
            labels=self.run.labels(role="network"),
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            check_duplicate=True,
        )
        return network, gateway

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._loop is not None:
            self._loop.join(5)
        # Everything goes at once: the pods' own stop sequences would only slow clean-up.
        for pod in list(self._pods):
            pod.abandon()
        # Their threads remove what they made; waiting for them leaves no container
        # created after the clean-up below.
        for pod in list(self._pods):
            pod.join(5)
        problems = self.run.clean_up()
        shutil.rmtree(self.volumes_root, ignore_errors=True)
        for problem in problems:
            log.error("clean-up: %s", problem)
        with contextlib.suppress(Exception):
            self.client.close()

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # --- the store the pods read ----------------------------------------------------------
    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.secrets.get((namespace, name))

    def config_map(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.config_maps.get((namespace, name))

    def claim_volume(self, namespace: str, claim: str) -> str | None:
        return self.claims.get((namespace, claim))

    def _claim(self, namespace: str, claim: str) -> str:
        key = (namespace, claim)
        if key not in self.claims:
            name = self.run.name(namespace, claim)
            self.client.api.create_volume(
                name=name,
                driver="local",
                labels=self.run.labels(f"PersistentVolumeClaim/{namespace}/{claim}", "claim"),
            )
            self.claims[key] = name
        return self.claims[key]

    # --- the whole release ----------------------------------------------------------------
    def check(self, manifests: Manifests) -> list[Finding]:
        """Refuse what the rehearsal cannot run: unmodelled kinds and fields, missing images."""
        findings = survey(manifests, self.options.allow_unmodelled)
        fatal = [f for f in findings if f.fatal]
        if fatal:
            raise RehearsalError(
                "the render uses what the rehearsal does not model (allow a finding with "
                "--allow-unmodelled NAME only if it cannot change how the pods run):\n"
                + "\n".join(f"  {f}" for f in fatal)
            )
        missing = []
        for obj, container in _containers(manifests):
            image = self.options.images.resolve(str(container.get("image", "")))
            try:
                self.client.images.get(image)
            except Exception:
                missing.append(f"  {obj.ref} container {container.get('name')!r}: image {image!r}")
        if missing:
            raise RehearsalError(
                "images not in the local engine (there is no registry: build them, or map the "
                "rendered names to local tags with --image FROM=TO):\n"
                + "\n".join(sorted(set(missing)))
            )
        return findings

    def install(self, manifests: Manifests, existing: Manifests | None = None) -> None:
        """What ``helm install --wait`` does, then waits for every workload either way."""
        self.findings = self.check(manifests)
        if existing is not None and existing.objects:
            # What exists before the release (a database, its Secrets) is up before the
            # release's first hook runs.
            self.check(existing)
            self._apply(existing)
            self.wait_settled()
        self._run_hooks(manifests, "pre-install")
        self._apply(manifests)
        if self.options.wait:
            self.wait_settled()
        self._run_hooks(manifests, "post-install")
        self.wait_settled()

    def upgrade(self, manifests: Manifests) -> None:
        """What ``helm upgrade --wait`` does: pre-upgrade hooks, the new objects applied (a
        changed pod template rolls its pods, a removed object goes), post-upgrade hooks."""
        self.findings = self.check(manifests)
        self._run_hooks(manifests, "pre-upgrade")
        self._apply(manifests, prune=True)
        if self.options.wait:
            self.wait_settled()
        self._run_hooks(manifests, "post-upgrade")
        self.wait_settled()

    def test(self, manifests: Manifests) -> list[HookRun]:
        """``helm test``: every test hook, in weight order; each must succeed."""
        before = len(self.hook_runs)
        self._run_hooks(manifests, "test")
        runs = self.hook_runs[before:]
        if not runs:
            self._note("the render has no helm test hook")
        return runs

    # --- day 2 ----------------------------------------------------------------------------
    def controller(self, name: str) -> WorkloadController:
        matches = [c for ref, c in self.controllers.items() if name in {ref, c.obj.name}]
        if len(matches) != 1:
            raise RehearsalError(
                f"no single workload named {name!r} (have: {', '.join(self.controllers)})"
            )
        return matches[0]

    def rolling_restart(self, name: str) -> None:
        """``kubectl rollout restart``, then wait until the rollout has finished."""
        with self._control_lock:
            self.controller(name).restart()
        self.wait_settled()

    def kill_pod(self, name: str) -> None:
        """SIGKILL every container of a pod and delete it at once (``--grace-period=0
        --force``); its controller makes a replacement."""
        pod = self.pod(name)
        pod.delete(grace=0, wait=True)

    def kill_container(self, pod_name: str, container: str | None = None) -> ContainerWorker:
        """SIGKILL one container of a pod (its first by default), as a crash or the OOM
        killer would; the pod stays, the kubelet restarts the container and its probes put
        the pod back behind its Services. Returns the container's worker."""
        pod = self.pod(pod_name)
        workers = [w for w in pod.containers if container in {None, w.name}]
        if not workers or not workers[0].container_id:
            raise RehearsalError(f"pod {pod_name} has no running container {container or ''}")
        worker = workers[0]
        self.client.api.kill(worker.container_id, signal="SIGKILL")
        return worker

    def update_secret(self, namespace: str, name: str, data: dict[str, bytes]) -> int:
        """Change a Secret's data (keys added or replaced); every volume projecting it is
        swapped atomically, as the kubelet's sync does. Environment variables keep their
        old values until the pod is replaced, as in Kubernetes. Returns the volumes updated."""
        key = (namespace, name)
        if key not in self.secrets:
            raise RehearsalError(f"Secret {namespace}/{name} does not exist")
        self.secrets[key] = {**self.secrets[key], **data}
        return self._reproject("Secret", namespace, name)

    def run_pod(
        self,
        name: str,
        *,
        image: str,
        command: list[str],
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int | None, str]:
        """Run a one-off pod (for example a stray client that no policy admits) and return its
        exit code and log."""
        spec = {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": image, "command": command}],
        }
        pod = self._make_pod(
            owner=f"Pod/{namespace or self.options.namespace}/{name}",
            name=name,
            namespace=namespace or self.options.namespace,
            labels=labels or {},
            spec=spec,
        )
        pod.critical = False
        pod.start()
        if not pod.wait_finished(timeout):
            pod.delete(0)
            raise RehearsalError(f"pod {name} did not finish within {timeout:g}s")
        pod.deleted.wait(30)
        worker = pod.containers[0] if pod.containers else None
        if worker is None:
            raise RehearsalError(f"pod {name} did not start: {pod.error}")
        return worker.exit_code, worker.last_logs

    def pods(self, owner: str | None = None) -> list[Pod]:
        return [
            p
            for p in self._pods
            if not p.deleted.is_set()
            and (owner is None or p.owner == owner or p.owner.endswith(f"/{owner}"))
        ]

    def pod(self, name: str) -> Pod:
        for pod in self.pods():
            if pod.name == name:
                return pod
        raise RehearsalError(f"no pod named {name!r}")

    @property
    def url(self) -> str:
        """Where the rehearsal's NGINX answers, from this machine."""
        if self.nginx is None:
            raise RehearsalError("the render has no Ingress or HTTPRoute, so no NGINX runs")
        if self.nginx_port:
            return f"http://127.0.0.1:{self.nginx_port}"
        return f"http://{self.nginx.ip}"

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.pods())

    # --- applying objects -----------------------------------------------------------------
    def _apply(self, manifests: Manifests, prune: bool = False) -> None:
        plain = sorted(
            (o for o in manifests.objects if not o.hooks),
            key=lambda o: KIND_ORDER.get(o.kind, len(KIND_ORDER)),
        )
        self._autoscaled = _autoscaled_minimums(plain)
        with self._control_lock:
            for obj in plain:
                self._apply_resource(obj)
            if prune:
                self._prune(plain)
        self._sync_routes()
        self._pod_changed(None)

    def _prune(self, wanted: list[KubeObject]) -> None:
        refs = {o.ref for o in wanted}
        for ref in [r for r in self.controllers if r not in refs]:
            log.info("%s: removed by the upgrade", ref)
            self.controllers.pop(ref).delete_all()
        for key, state in list(self.services.items()):
            if state.obj.ref not in refs:
                self.services.pop(key)
                if state.holder:
                    with contextlib.suppress(Exception):
                        self.client.api.remove_container(state.holder, force=True)
        self.policies = [p for p in self.policies if p.ref in refs]
        self.routes = [r for r in self.routes if r.ref in refs]

    def _apply_resource(self, obj: KubeObject) -> None:
        key = (obj.namespace, obj.name)
        kind = obj.kind
        try:
            if kind == "Secret":
                self.secrets[key] = decode_secret(obj)
                self._reproject("Secret", *key)
            elif kind == "ConfigMap":
                self.config_maps[key] = config_map_data(obj)
                self._reproject("ConfigMap", *key)
            elif kind == "Namespace":
                self.namespace_objects[obj.name] = obj.labels
            elif kind == "PersistentVolumeClaim":
                self._claim(*key)
            elif kind == "NetworkPolicy":
                self.policies = [p for p in self.policies if p.ref != obj.ref] + [obj]
            elif kind == "Service":
                self._apply_service(obj)
            elif kind in WORKLOAD_KINDS:
                self._apply_workload(obj)
            elif kind in ROUTE_KINDS:
                self.routes = [r for r in self.routes if r.ref != obj.ref] + [obj]
            elif kind in ("Job", "Pod"):
                self._start_background_job(obj)
        except ManifestError as error:
            raise RehearsalError(str(error)) from error

    def _apply_service(self, obj: KubeObject) -> None:
        key = (obj.namespace, obj.name)
        headless = obj.spec.get("clusterIP") == "None"
        state = self.services.get(key)
        if state is not None and bool(state.vip) != (not headless):
            raise RehearsalError(f"{obj.ref}: clusterIP cannot change between headless and not")
        if state is None:
            vip, holder = ("", "") if headless else self._service_address(obj)
            state = ServiceState(obj, vip, holder)
        state.obj = obj
        self.services[key] = state
        for port in obj.spec.get("ports") or []:
            if str(port.get("protocol", "TCP")) not in {"TCP", "UDP"}:
                raise RehearsalError(
                    f"{obj.ref}: port protocol {port.get('protocol')} is not modelled"
                )
        if obj.spec.get("type") in {"NodePort", "LoadBalancer"}:
            self._note(
                f"{obj.ref}: type {obj.spec['type']} is reached in-cluster only, as a ClusterIP"
            )

    def _service_address(self, obj: KubeObject) -> tuple[str, str]:
        """A Service's address: a container holding the Service's DNS names. Nothing listens
        on it; every pod's own rules translate it to a ready endpoint."""
        assert self.node is not None
        api = self.client.api
        names = [
            obj.name,
            f"{obj.name}.{obj.namespace}",
            f"{obj.name}.{obj.namespace}.svc",
            f"{obj.name}.{obj.namespace}.svc.{CLUSTER_DOMAIN}",
        ]
        container = api.create_container(
            self.node.infra_image,
            name=self.run.name("svc", obj.namespace, obj.name),
            labels=self.run.labels(obj.ref, "service"),
            host_config=api.create_host_config(network_mode=self.node.network),
            networking_config=api.create_networking_config(
                {self.node.network: api.create_endpoint_config(aliases=names)}
            ),
            use_config_proxy=False,
        )
        api.start(container["Id"])
        ip = api.inspect_container(container["Id"])["NetworkSettings"]["Networks"][
            self.node.network
        ]["IPAddress"]
        return ip, container["Id"]

    def _apply_workload(self, obj: KubeObject) -> None:
        existing = self.controllers.get(obj.ref)
        if existing is not None:
            existing.autoscaled_min = self._autoscaled.get(obj.ref, 0)
            existing.update(obj)
            return
        controller: WorkloadController
        if obj.kind == "Deployment":
            controller = DeploymentController(obj, self._make_pod, self.options.max_replicas)
        else:
            controller = StatefulSetController(
                obj,
                self._make_pod,
                self.options.max_replicas,
                lambda claim: self._claim(obj.namespace, claim),
            )
        controller.autoscaled_min = self._autoscaled.get(obj.ref, 0)
        if controller.autoscaled_min:
            self._note(
                f"{obj.ref}: {controller.wanted} replicas, its autoscaler's minReplicas; "
                "no scaling follows"
            )
        note = controller.capped_note()
        if note:
            self._note(note)
            log.warning("%s", note)
        self.controllers[obj.ref] = controller

    def _start_background_job(self, obj: KubeObject) -> None:
        outcome: list[JobOutcome] = []

        def work() -> None:
            outcome.append(run_job(obj, self._make_job_pod, self.options.job_backoff_seconds))

        thread = threading.Thread(target=work, name=f"job-{obj.name}", daemon=True)
        self.background.append((obj, thread, outcome))
        thread.start()

    def _reproject(self, kind: str, namespace: str, name: str) -> int:
        updated = 0
        for pod in self.pods():
            for volume in pod.volumes.values():
                if volume.ref == (kind, namespace, name):
                    pod.project(volume)
                    updated += 1
        return updated

    # --- pods -----------------------------------------------------------------------------
    def _make_pod(self, **kwargs: Any) -> Pod:
        assert self.node is not None
        namespace = kwargs["namespace"]
        labels = kwargs.get("labels") or {}
        aliases: list[str] = []
        for state in self.services.values():
            obj = state.obj
            selector = obj.spec.get("selector") or {}
            if state.vip or obj.namespace != namespace or not selector:
                continue
            if all(str(labels.get(k)) == str(v) for k, v in selector.items()):
                aliases += [
                    obj.name,
                    f"{obj.name}.{namespace}",
                    f"{obj.name}.{namespace}.svc",
                    f"{obj.name}.{namespace}.svc.{CLUSTER_DOMAIN}",
                ]
        subdomain = kwargs.get("subdomain") or (kwargs.get("spec") or {}).get("subdomain") or ""
        kwargs["subdomain"] = subdomain
        if subdomain:
            host = kwargs["name"]
            aliases += [
                f"{host}.{subdomain}",
                f"{host}.{subdomain}.{namespace}",
                f"{host}.{subdomain}.{namespace}.svc",
                f"{host}.{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}",
            ]
        pod = Pod(self.node, aliases=aliases, **kwargs)
        self._pods.append(pod)
        return pod

    def _make_job_pod(self, **kwargs: Any) -> Pod:
        pod = self._make_pod(**kwargs)
        pod.critical = False
        return pod

    def _pod_changed(self, pod: Pod | None) -> None:
        if pod is not None and pod.error and pod.critical:
            message = pod.describe()
            if message not in self.failures:
                self.failures.append(message)
        self._sync_network()

    def _sync_network(self) -> None:
        """Recompute every pod's rules from the pods, Services and policies, and apply the
        ones that changed, all before returning."""
        if self.node is None:
            return
        with self._net_lock:
            self._pods = [p for p in self._pods if not p.deleted.is_set()]
            pods = [p for p in self._pods if p.ip]
            addresses = {
                p.name + "/" + p.namespace: PodAddress(
                    key=p.name,
                    namespace=p.namespace,
                    labels=p.labels,
                    ip=p.ip,
                    named_ports=p.named_ports,
                    serving=p.ready,
                )
                for p in pods
            }
            services = [
                ServiceAddress(
                    namespace=s.obj.namespace,
                    name=s.obj.name,
                    ip=s.vip,
                    selector={
                        str(k): str(v) for k, v in (s.obj.spec.get("selector") or {}).items()
                    },
                    ports=list(s.obj.spec.get("ports") or []),
                    publish_not_ready=bool(s.obj.spec.get("publishNotReadyAddresses", False)),
                )
                for s in self.services.values()
            ]
            labels = {**self.options.namespace_labels, **self.namespace_objects}
            labels.setdefault(self.options.ingress_namespace, {})
            cluster = Cluster(
                list(addresses.values()), services, self.policies, labels, self.node.node_ip
            )
            work = []
            for pod in pods:
                if not pod.infra_id:
                    continue
                try:
                    text = ruleset(cluster, addresses[pod.name + "/" + pod.namespace])
                except PolicyError as error:
                    if str(error) not in self.failures:
                        self.failures.append(str(error))
                    continue
                if text != pod.applied_rules:
                    work.append((pod, text))
            if not work:
                return
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda item: self._apply_rules(*item), work))

    def _apply_rules(self, pod: Pod, text: str) -> None:
        try:
            restore = ["sh", "-c", 'printf "%s" "$RULES" | iptables-restore --noflush']
            code, output = exec_in(self.client.api, pod.infra_id, restore, {"RULES": text})
        except Exception as error:
            if not pod.terminating:
                self.failures.append(f"{pod.ref}: could not apply its network rules: {error}")
            return
        if code != 0:
            if not pod.terminating:
                self.failures.append(f"{pod.ref}: iptables-restore failed: {output}\n{text}")
            return
        pod.applied_rules = text

    # --- routing --------------------------------------------------------------------------
    def _service_port(self, namespace: str, name: str, port: object) -> tuple[str, int]:
        state = self.services.get((namespace, name))
        if state is None:
            raise RehearsalError(
                f"a route names Service {namespace}/{name}, which the render does not have"
            )
        if not state.vip:
            raise RehearsalError(
                f"a route names headless Service {namespace}/{name}; routes need a Service address"
            )
        for entry in state.obj.spec.get("ports") or []:
            if port == entry.get("name") or str(port) == str(entry.get("port")):
                return state.vip, int(entry["port"])
        raise RehearsalError(
            f"a route names port {port!r} of {state.obj.ref}, which it does not have"
        )

    def _sync_routes(self) -> None:
        routes = ingress_nginx.Routes()
        served = []
        policies = [r for r in self.routes if r.kind == "ClientSettingsPolicy"]
        for obj in self.routes:
            if obj.kind == "Ingress":
                wanted = obj.spec.get("ingressClassName") or obj.annotations.get(
                    "kubernetes.io/ingress.class"
                )
                if wanted and wanted != self.options.ingress_class:
                    served_class = f"--ingress-class {self.options.ingress_class}"
                    self._note(f"{obj.ref}: class {wanted!r} is not served ({served_class})")
                    continue
                try:
                    ingress_nginx.from_ingress(obj, routes, self._service_port)
                except (RehearsalError, ManifestError) as error:
                    raise RehearsalError(f"{obj.ref}: {error}") from error
                served.append(obj)
            elif obj.kind == "HTTPRoute":
                try:
                    ingress_nginx.from_http_route(obj, routes, self._service_port, policies)
                except (RehearsalError, ManifestError) as error:
                    raise RehearsalError(f"{obj.ref}: {error}") from error
                served.append(obj)
        for note in routes.notes:
            self._note(note)
        if not served and self.nginx is None:
            return
        config = {"nginx.conf": ingress_nginx.render(routes).encode()}
        key = (self.options.ingress_namespace, NGINX_CONFIG)
        if self.config_maps.get(key) == config:
            return
        self.config_maps[key] = config
        if self.nginx is None:
            self._start_nginx()
        else:
            self._reproject("ConfigMap", self.options.ingress_namespace, NGINX_CONFIG)
            worker = self.nginx.containers[0]
            code, output = exec_in(
                self.client.api, worker.container_id, [*NGINX_COMMAND, "-s", "reload"]
            )
            if code != 0:
                raise RehearsalError(f"the rehearsal's NGINX refused the new routes: {output}")

    def _start_nginx(self) -> None:
        publish = self.options.publish_port
        if publish == 0:
            from shopstack_devstack.ports import free_port

            publish = free_port()
        self.nginx_port = publish
        spec = {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "nginx",
                    "image": self.options.nginx_image,
                    "command": [*NGINX_COMMAND, "-g", "daemon off;"],
                    "ports": [{"name": "http", "containerPort": 80}],
                    "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/rehearse-nginx"}],
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": NGINX_CONFIG}}],
        }
        ref = f"Deployment/{self.options.ingress_namespace}/ingress-nginx-controller"
        try:
            self.client.images.get(self.options.nginx_image)
        except Exception as error:
            raise RehearsalError(
                f"the NGINX image {self.options.nginx_image!r} is not in the local engine "
                "(set NGINX_IMAGE)"
            ) from error
        pod = self._make_pod(
            owner=ref,
            name="ingress-nginx-controller",
            namespace=self.options.ingress_namespace,
            labels=self.options.ingress_labels,
            spec=spec,
            published={80: publish} if publish else None,
            address=str(ipaddress.ip_network(self.ingress_cidr)[2]),
        )
        self.nginx = pod
        pod.start()

    # --- waiting --------------------------------------------------------------------------
    def wait_settled(self, timeout: float | None = None) -> None:
        """Wait until every workload runs its desired, ready pods of its current revision
        (and NGINX is ready); fail at once on a pod that cannot start, a crash loop, or a
        policy the rehearsal cannot enforce."""
        limit = self.options.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            self.raise_failures()
            self._check_crash_loops()
            for _, thread, outcome in self.background:
                if not thread.is_alive() and outcome and not outcome[0].succeeded:
                    raise RehearsalError(f"{outcome[0].detail}\n{outcome[0].logs}")
            with self._control_lock:
                pending = [c for c in self.controllers.values() if not c.settled()]
            jobs = [obj for obj, thread, _ in self.background if thread.is_alive()]
            nginx_waiting = self.nginx is not None and not self.nginx.ready
            if not pending and not jobs and not nginx_waiting:
                # Readiness flips reach the Services through the pods' threads; make sure
                # every pod's rules have caught up before saying the release is up.
                self._sync_network()
                self.raise_failures()
                return
            if time.monotonic() > deadline:
                waiting = (
                    [c.obj.ref for c in pending]
                    + [o.ref for o in jobs]
                    + (["the rehearsal's NGINX"] if nginx_waiting else [])
                )
                what = ", ".join(waiting)
                raise RehearsalError(
                    f"timed out after {limit:g}s waiting for {what}:\n{self.describe()}"
                )
            time.sleep(0.2)

    def raise_failures(self) -> None:
        if self.failures:
            raise RehearsalError("\n".join(self.failures))

    def _check_crash_loops(self) -> None:
        for pod in self.pods():
            if not pod.critical or pod.ready:
                continue
            for worker in pod.containers:
                if worker.restart_count >= self.options.max_restarts:
                    restarts = f"restarted {worker.restart_count} times without becoming ready"
                    raise RehearsalError(f"{worker.ref} {restarts}:\n{pod.describe()}")

    def _control_loop(self) -> None:
        while not self._stop.wait(0.2):
            with self._control_lock:
                for controller in list(self.controllers.values()):
                    try:
                        controller.reconcile()
                    except RehearsalError as error:
                        if str(error) not in self.failures:
                            self.failures.append(str(error))

    # --- hooks ----------------------------------------------------------------------------
    def _run_hooks(self, manifests: Manifests, phase: str) -> None:
        phases = {phase, "test-success"} if phase == "test" else {phase}
        hooks = [o for o in manifests.objects if phases & set(o.hooks)]
        hooks.sort(key=lambda o: (o.hook_weight, KIND_ORDER.get(o.kind, len(KIND_ORDER)), o.name))
        succeeded: list[KubeObject] = []
        for obj in hooks:
            started = time.monotonic()
            log.info("%s hook %s (weight %d)", phase, obj.ref, obj.hook_weight)
            if obj.kind in ("Job", "Pod"):
                outcome = run_job(obj, self._make_job_pod, self.options.job_backoff_seconds)
                self.hook_runs.append(
                    HookRun(phase, obj.ref, outcome.detail, time.monotonic() - started)
                )
                if not outcome.succeeded:
                    raise RehearsalError(f"{phase} hook {outcome.detail}\n{outcome.logs}")
                if outcome.logs:
                    log.info("%s log:\n%s", obj.ref, outcome.logs)
            else:
                with self._control_lock:
                    self._apply_resource(obj)
                self.hook_runs.append(
                    HookRun(phase, obj.ref, "created", time.monotonic() - started)
                )
            succeeded.append(obj)
        # Helm deletes the hook-succeeded resources once every hook of the phase succeeded.
        for obj in succeeded:
            if "hook-succeeded" in obj.hook_delete_policies and obj.kind not in ("Job", "Pod"):
                self._delete_resource(obj)

    def _delete_resource(self, obj: KubeObject) -> None:
        key = (obj.namespace, obj.name)
        if obj.kind == "Secret":
            self.secrets.pop(key, None)
        elif obj.kind == "ConfigMap":
            self.config_maps.pop(key, None)
        elif obj.kind == "NetworkPolicy":
            self.policies = [p for p in self.policies if p.ref != obj.ref]
        log.info("%s: deleted by its hook-succeeded delete policy", obj.ref)


def _autoscaled_minimums(objects: list[KubeObject]) -> dict[str, int]:
    """The workloads HorizontalPodAutoscalers aim at, with their minReplicas."""
    minimums = {}
    for hpa in objects:
        if hpa.kind != "HorizontalPodAutoscaler":
            continue
        target = hpa.spec.get("scaleTargetRef") or {}
        if target.get("kind") in WORKLOAD_KINDS and target.get("name"):
            ref = f"{target['kind']}/{hpa.namespace}/{target['name']}"
            minimums[ref] = int(hpa.spec.get("minReplicas", 1))
    return minimums


def _containers(manifests: Manifests) -> Iterator[tuple[KubeObject, dict[str, Any]]]:
    for obj in manifests.objects:
        if obj.kind == "Pod":
            spec = obj.spec
        elif obj.kind in (*WORKLOAD_KINDS, "Job"):
            spec = (obj.spec.get("template") or {}).get("spec") or {}
        else:
            continue
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            yield obj, container
