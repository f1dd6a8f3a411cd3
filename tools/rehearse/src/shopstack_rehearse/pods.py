"""The kubelet's part: one pod as containers.

A pod is a network holder (the rehearsal's image, like the kubelet's pause container: it
owns the pod's address, hostname and iptables rules) and the pod's containers joined to its
network namespace, so a container restart keeps the pod's address. Each container has a
worker thread that starts it, probes it, restarts it with back-off, and stops it with
preStop, SIGTERM, the grace period and SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shopstack_rehearse import probes
from shopstack_rehearse.engine import ImageMap, RehearsalError, Run
from shopstack_rehearse.manifests import quantity
from shopstack_rehearse.netfilter import SETUP
from shopstack_rehearse.projection import ProjectionError, files_for, write_atomically

log = logging.getLogger("shopstack_rehearse")

CLUSTER_DOMAIN = "cluster.local"
NODE_NAME = "rehearsal-node"
INFRA_VOLUME_ROOT = "/rehearse/volumes"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class PodConfigError(RehearsalError):
    """What the kubelet reports as CreateContainerConfigError or FailedMount."""


class Store(Protocol):
    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None: ...

    def config_map(self, namespace: str, name: str) -> dict[str, bytes] | None: ...

    def claim_volume(self, namespace: str, claim: str) -> str | None: ...


@dataclass
class KubeletSettings:
    backoff_seconds: float = 10.0
    max_backoff_seconds: float = 300.0
    tick: float = 0.1


@dataclass
class Node:
    """What every pod on the rehearsal's one node shares."""

    run: Run
    infra_image: str
    network: str
    node_ip: str
    images: ImageMap
    store: Store
    volumes_root: Path
    on_change: Callable[[Pod], None]
    apply_rules: Callable[[Pod], None]
    settings: KubeletSettings = field(default_factory=KubeletSettings)

    @property
    def api(self) -> Any:
        return self.run.client.api


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(substitute, text)


@dataclass
class Volume:
    name: str
    kind: str  # projected, emptyDir, claim
    source: str  # host directory (projected) or Docker volume name
    ref: tuple[str, str, str] | None = None  # ("Secret", namespace, name) of a projection
    items: list[dict[str, Any]] | None = None
    default_mode: int | None = None
    optional: bool = False
    read_only: bool = False


class Pod:
    """One pod: created by a controller (or a hook, or the rehearsal itself), run until
    deleted or, for restartPolicy Never/OnFailure, until its containers finish."""

    def __init__(
        self,
        node: Node,
        *,
        name: str,
        namespace: str,
        labels: Mapping[str, str],
        spec: Mapping[str, Any],
        owner: str,
        annotations: Mapping[str, str] | None = None,
        aliases: list[str] | None = None,
        subdomain: str = "",
        published: Mapping[int, int] | None = None,
        claim_volumes: Mapping[str, str] | None = None,
        address: str = "",
    ) -> None:
        self.node = node
        self.name = name
        self.namespace = namespace
        self.labels = dict(labels)
        self.annotations = dict(annotations or {})
        self.spec = dict(spec)
        self.owner = owner
        self.aliases = list(aliases or [])
        self.subdomain = subdomain
        self.published = dict(published or {})
        self.claim_volumes = dict(claim_volumes or {})
        self.address = address  # a fixed pod address, outside the range pods draw from
        self.revision = ""
        self.ordinal: int | None = None
        self.ip = ""
        self.infra_id = ""
        self.phase = "Pending"
        self.error: str | None = None
        self.terminating = False
        self.deleted = threading.Event()
        self.created_at = time.monotonic()
        self.ready_since: float | None = None
        self.volumes: dict[str, Volume] = {}
        self.containers: list[ContainerWorker] = []
        self.init_containers: list[ContainerWorker] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_grace: float | None = None
        self.restart_policy = str(self.spec.get("restartPolicy", "Always"))
        # A pod whose failure fails the run (a workload's); hook and one-off pods report
        # through their Job instead.
        self.critical = True
        self.applied_rules = ""
        self.grace = float(self.spec.get("terminationGracePeriodSeconds", 30))

    # --- what the controllers and the network read ------------------------------------
    @property
    def ref(self) -> str:
        return f"{self.owner} pod {self.name}"

    @property
    def ready(self) -> bool:
        return (
            self.phase == "Running"
            and not self.terminating
            and bool(self.containers)
            and all(c.ready for c in self.containers)
        )

    @property
    def named_ports(self) -> dict[str, tuple[int, str]]:
        ports: dict[str, tuple[int, str]] = {}
        for container in self.spec.get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name"):
                    ports[str(port["name"])] = (
                        int(port["containerPort"]),
                        str(port.get("protocol", "TCP")),
                    )
        return ports

    @property
    def restarts(self) -> int:
        return sum(c.restart_count for c in [*self.init_containers, *self.containers])

    def describe(self) -> str:
        parts = [f"{self.ref}: {self.phase}" + (" (terminating)" if self.terminating else "")]
        if self.error:
            parts.append(f"  error: {self.error}")
        for worker in [*self.init_containers, *self.containers]:
            parts.append(f"  {worker.describe()}")
        return "\n".join(parts)

    # --- life ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._live, name=f"pod-{self.name}", daemon=True)
        self._thread.start()

    def delete(self, grace: float | None = None, wait: bool = True) -> None:
        """Delete the pod: out of its Services first, then each container's stop sequence.
        ``grace=0`` is a forced delete: SIGKILL at once, no preStop."""
        self._stop_grace = self.grace if grace is None else grace
        self.terminating = True
        self._stop.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def abandon(self) -> None:
        """The rehearsal is ending: stop every worker without a stop sequence; the
        rehearsal removes the containers."""
        self.terminating = True
        self._stop_grace = 0
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_finished(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.phase in {"Succeeded", "Failed"} or self.deleted.is_set():
                return True
            time.sleep(self.node.settings.tick)
        return False

    def _live(self) -> None:
        try:
            self._prepare()
            if not self._run_init_containers():
                return
            self.containers = [
                ContainerWorker(self, c, init=False) for c in self.spec.get("containers") or []
            ]
            for worker in self.containers:
                worker.configure()
            self.phase = "Running"
            for worker in self.containers:
                worker.start()
            self.node.on_change(self)
            self._watch()
        except (PodConfigError, ProjectionError, probes.ProbeSpecError) as error:
            self.error = str(error)
            self.phase = "Failed"
            log.error("%s: %s", self.ref, error)
        except Exception as error:
            if self._stop.is_set():
                return  # deleted while starting: what failed was only the start
            self.error = f"{type(error).__name__}: {error}"
            self.phase = "Failed"
            log.exception("%s failed", self.ref)
        finally:
            self._tear_down()

    def _watch(self) -> None:
        was_ready = False
        while not self._stop.wait(self.node.settings.tick):
            ready = self.ready
            if ready != was_ready:
                self.ready_since = time.monotonic() if ready else None
                was_ready = ready
                self.node.on_change(self)
            if all(w.finished for w in self.containers):
                failed = any(w.exit_code != 0 for w in self.containers)
                self.phase = "Failed" if failed else "Succeeded"
                self.node.on_change(self)
                return

    def _tear_down(self) -> None:
        self.terminating = True
        self.node.on_change(self)
        grace = self.grace if self._stop_grace is None else self._stop_grace
        stoppers = [
            threading.Thread(target=w.stop, args=(grace,), daemon=True) for w in self.containers
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for worker in [*self.init_containers, *self.containers]:
            worker.join()
            worker.remove()
        if self.infra_id:
            with contextlib.suppress(Exception):
                self.node.api.remove_container(self.infra_id, force=True)
        for volume in self.volumes.values():
            if volume.kind == "emptyDir":
                with contextlib.suppress(Exception):
                    self.node.api.remove_volume(volume.source, force=True)
            elif volume.kind == "projected":
                shutil.rmtree(volume.source, ignore_errors=True)
        self.deleted.set()
        self.node.on_change(self)

    # --- set-up ----------------------------------------------------------------------
    @property
    def pod_security(self) -> dict[str, Any]:
        context: dict[str, Any] = self.spec.get("securityContext") or {}
        return context

    @property
    def fs_group(self) -> int | None:
        value = self.pod_security.get("fsGroup")
        return None if value is None else int(value)

    def _prepare(self) -> None:
        self._make_volumes()
        self._start_infra()

    def _make_volumes(self) -> None:
        for spec in self.spec.get("volumes") or []:
            name = str(spec["name"])
            if "secret" in spec or "configMap" in spec:
                kind = "Secret" if "secret" in spec else "ConfigMap"
                source = spec.get("secret") or spec.get("configMap") or {}
                object_name = str(
                    source.get("secretName") if kind == "Secret" else source.get("name")
                )
                directory = self.node.volumes_root / self.name / name
                volume = Volume(
                    name,
                    "projected",
                    str(directory),
                    (kind, self.namespace, object_name),
                    items=source.get("items"),
                    default_mode=source.get("defaultMode"),
                    optional=bool(source.get("optional", False)),
                )
                self.volumes[name] = volume
                self.project(volume)
            elif "emptyDir" in spec:
                self.volumes[name] = Volume(
                    name, "emptyDir", self._empty_dir(name, spec["emptyDir"] or {})
                )
            elif "persistentVolumeClaim" in spec:
                claim = str(spec["persistentVolumeClaim"]["claimName"])
                docker_volume = self.claim_volumes.get(claim) or self.node.store.claim_volume(
                    self.namespace, claim
                )
                if docker_volume is None:
                    missing = f"PersistentVolumeClaim {self.namespace}/{claim} does not exist"
                    raise PodConfigError(f"{self.ref}: volume {name!r}: {missing}")
                self._own_claim(docker_volume)
                read_only = bool(spec["persistentVolumeClaim"].get("readOnly", False))
                self.volumes[name] = Volume(name, "claim", docker_volume, read_only=read_only)
            else:
                kinds = sorted(k for k in spec if k != "name")
                raise PodConfigError(f"{self.ref}: volume {name!r} of type {kinds} is not modelled")

    def project(self, volume: Volume) -> None:
        """(Re)write a Secret or ConfigMap volume from the object's current data."""
        assert volume.ref is not None
        kind, namespace, object_name = volume.ref
        data = (
            self.node.store.secret(namespace, object_name)
            if kind == "Secret"
            else self.node.store.config_map(namespace, object_name)
        )
        if data is None:
            if not volume.optional:
                missing = f"{kind} {namespace}/{object_name} does not exist"
                raise PodConfigError(f"{self.ref}: volume {volume.name!r}: {missing}")
            data = {}
        try:
            files = files_for(data, volume.items, volume.default_mode)
        except ProjectionError as error:
            raise PodConfigError(
                f"{self.ref}: volume {volume.name!r}: {kind} {namespace}/{object_name}: {error}"
            ) from error
        write_atomically(Path(volume.source), files, self.fs_group)

    def _empty_dir(self, name: str, spec: Mapping[str, Any]) -> str:
        options = ["mode=2777" if self.fs_group is not None else "mode=0777"]
        if self.fs_group is not None:
            options.append(f"gid={self.fs_group}")
        if spec.get("sizeLimit"):
            options.append(f"size={int(quantity(spec['sizeLimit']))}")
        volume_name = self.node.run.name(self.name, name)
        self.node.api.create_volume(
            name=volume_name,
            driver="local",
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": ",".join(options)},
            labels=self.node.run.labels(self.owner, "emptyDir"),
        )
        return volume_name

    def _own_claim(self, docker_volume: str) -> None:
        """The kubelet gives a claim's files the pod's fsGroup on every mount."""
        if self.fs_group is None:
            return
        group = self.fs_group
        script = (
            f"chgrp -R {group} /volume && chmod -R g+rwX /volume && "
            "find /volume -type d -exec chmod g+s {} +"
        )
        api = self.node.api
        container = api.create_container(
            self.node.infra_image,
            entrypoint=["sh", "-c", script],
            labels=self.node.run.labels(self.owner, "prepare"),
            host_config=api.create_host_config(
                binds={docker_volume: {"bind": "/volume", "mode": "rw"}}
            ),
            use_config_proxy=False,
        )
        try:
            api.start(container)
            code = api.wait(container, timeout=60)["StatusCode"]
            if code != 0:
                raise PodConfigError(
                    f"{self.ref}: could not apply fsGroup {group} to claim volume {docker_volume}"
                )
        finally:
            api.remove_container(container, force=True)

    def _start_infra(self) -> None:
        node = self.node
        api = node.api
        search = [f"{self.namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
        hostname = str(self.spec.get("hostname") or self.name)[:63]
        binds = {}
        for volume in self.volumes.values():
            if volume.kind == "emptyDir":
                binds[volume.source] = {"bind": f"{INFRA_VOLUME_ROOT}/{volume.name}", "mode": "rw"}
        host_config = api.create_host_config(
            network_mode=node.network,
            cap_add=["NET_ADMIN"],
            dns_search=search,
            dns_opt=["ndots:5"],
            binds=binds,
            port_bindings={port: ("127.0.0.1", host) for port, host in self.published.items()},
        )
        networking = api.create_networking_config(
            {
                node.network: api.create_endpoint_config(
                    aliases=self.aliases or None, ipv4_address=self.address or None
                )
            }
        )
        container = api.create_container(
            node.infra_image,
            name=node.run.name(self.name),
            hostname=hostname,
            domainname=f"{self.subdomain}.{self.namespace}.svc.{CLUSTER_DOMAIN}"
            if self.subdomain
            else None,
            labels={**node.run.labels(self.owner, "pod"), "shopstack.rehearse/pod": self.name},
            host_config=host_config,
            networking_config=networking,
            ports=list(self.published) or None,
            use_config_proxy=False,
        )
        infra = container["Id"]
        api.start(infra)
        details = api.inspect_container(infra)
        result = exec_in(api, infra, ["sh", "-c", SETUP])
        if result[0] != 0:
            api.remove_container(infra, force=True)
            raise RehearsalError(
                f"{self.ref}: could not set up the pod's iptables chains: {result[1]}"
            )
        # Only now does the pod take part in the network rules.
        self.ip = details["NetworkSettings"]["Networks"][node.network]["IPAddress"]
        self.infra_id = infra
        node.apply_rules(self)

    def _run_init_containers(self) -> bool:
        for spec in self.spec.get("initContainers") or []:
            worker = ContainerWorker(self, spec, init=True)
            worker.configure()
            self.init_containers.append(worker)
            worker.start()
            while not worker.finished:
                if self._stop.wait(self.node.settings.tick):
                    return False
                if worker.exit_code not in (None, 0) and self.restart_policy == "Never":
                    break
            if worker.exit_code != 0:
                self.phase = "Failed"
                self.error = f"init container {worker.name!r} exited {worker.exit_code}"
                return False
        return True

    def restart_backoff(self, restarts: int) -> float:
        if restarts <= 1:
            return 0.0
        settings = self.node.settings
        return float(
            min(settings.backoff_seconds * 2 ** (restarts - 2), settings.max_backoff_seconds)
        )

    @property
    def stopping(self) -> threading.Event:
        return self._stop


def exec_in(
    api: Any, container_id: str, command: list[str], env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a command in a running container; its exit code and output."""
    exec_id = api.exec_create(container_id, command, environment=env)["Id"]
    output = api.exec_start(exec_id)
    code = api.exec_inspect(exec_id)["ExitCode"]
    return int(code), output.decode(errors="replace") if isinstance(output, bytes) else str(output)


class ContainerWorker:
    """One container of a pod: created, probed, restarted and stopped as the kubelet does."""

    def __init__(self, pod: Pod, spec: Mapping[str, Any], *, init: bool) -> None:
        self.pod = pod
        self.spec = dict(spec)
        self.name = str(spec["name"])
        self.init = init
        self.container_id = ""
        self.restart_count = 0
        self.started = False
        self.ready = False
        self.exit_code: int | None = None
        self.finished = False
        self.last_probe = ""
        self.last_logs = ""
        self.events: list[str] = []
        self._thread: threading.Thread | None = None
        self._create_args: dict[str, Any] = {}
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    @property
    def ref(self) -> str:
        return f"{self.pod.ref} container {self.name!r}"

    def describe(self) -> str:
        state = "finished" if self.finished else ("ready" if self.ready else "not ready")
        text = f"container {self.name}: {state}, restarts {self.restart_count}"
        if self.exit_code is not None:
            text += f", last exit {self.exit_code}"
        if self.last_probe:
            text += f"; last probe: {self.last_probe}"
        if self.events:
            text += f"; {self.events[-1]}"
        if self.last_logs:
            text += "\n    log: " + self.last_logs.strip().replace("\n", "\n    log: ")
        return text

    @property
    def named_ports(self) -> dict[str, int]:
        return {
            str(p["name"]): int(p["containerPort"])
            for p in self.spec.get("ports") or []
            if p.get("name")
        }

    # --- configuration: everything the kubelet resolves before creating the container ---
    def configure(self) -> None:
        pod = self.pod
        node = pod.node
        self._check_ports()
        env = self._environment()
        image = node.images.resolve(str(self.spec.get("image", "")))
        try:
            image_config = node.api.inspect_image(image)["Config"] or {}
        except Exception as error:
            raise PodConfigError(
                f"{self.ref}: image {image!r} is not in the local engine (no registry: build "
                "it, or map the rendered name to a local tag with --image)"
            ) from error
        security = {**pod.pod_security, **(self.spec.get("securityContext") or {})}
        user = self._user(security, str(image_config.get("User") or ""))
        command = [expand(str(c), env) for c in self.spec.get("command") or []] or None
        args = [expand(str(a), env) for a in self.spec.get("args") or []] or None
        groups = [str(g) for g in pod.pod_security.get("supplementalGroups") or []]
        if pod.fs_group is not None:
            groups.append(str(pod.fs_group))
        capabilities = security.get("capabilities") or {}
        security_opt = []
        if security.get("allowPrivilegeEscalation") is False:
            security_opt.append("no-new-privileges:true")
        seccomp = (security.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined":
            security_opt.append("seccomp=unconfined")
        limits = (self.spec.get("resources") or {}).get("limits") or {}
        memory = int(quantity(limits["memory"])) if "memory" in limits else None
        cpus = int(quantity(limits["cpu"]) * 1e9) if "cpu" in limits else None
        api = node.api
        host_config = api.create_host_config(
            network_mode=f"container:{pod.infra_id}",
            mounts=self._mounts(),
            read_only=bool(security.get("readOnlyRootFilesystem", False)),
            cap_drop=[str(c) for c in capabilities.get("drop") or []] or None,
            cap_add=[str(c) for c in capabilities.get("add") or []] or None,
            security_opt=security_opt or None,
            privileged=bool(security.get("privileged", False)),
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=cpus,
            group_add=groups or None,
        )
        self._create_args = {
            "image": image,
            "entrypoint": command,
            "command": args,
            "environment": [f"{k}={v}" for k, v in env.items()],
            "working_dir": self.spec.get("workingDir"),
            "user": user,
            "labels": {
                **node.run.labels(pod.owner, "container"),
                "shopstack.rehearse/pod": pod.name,
            },
            "host_config": host_config,
            "use_config_proxy": False,
        }

    def _check_ports(self) -> None:
        """A probe or handler naming a port the container does not have can never pass."""
        handlers = {
            kind: self.spec.get(kind)
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        handlers["preStop"] = (self.spec.get("lifecycle") or {}).get("preStop")
        for kind, handler in handlers.items():
            for action in ("httpGet", "tcpSocket"):
                if handler and action in handler:
                    try:
                        probes.resolve_port(
                            handler[action].get("port"), self.named_ports, f"{kind} {action}"
                        )
                    except probes.ProbeSpecError as error:
                        raise PodConfigError(f"{self.ref}: {error}") from error

    def _user(self, security: Mapping[str, Any], image_user: str) -> str | None:
        uid = security.get("runAsUser")
        gid = security.get("runAsGroup")
        if security.get("runAsNonRoot"):
            if uid is None:
                name = image_user.split(":", maxsplit=1)[0]
                if not name.isdigit():
                    raise PodConfigError(
                        f"{self.ref}: runAsNonRoot and the image's user "
                        f"{image_user or 'root'!r} is not numeric, so it cannot be verified to "
                        "be non-root (set runAsUser)"
                    )
                if int(name) == 0:
                    raise PodConfigError(f"{self.ref}: runAsNonRoot and the image will run as root")
            elif int(uid) == 0:
                raise PodConfigError(f"{self.ref}: runAsNonRoot and runAsUser is 0")
        if uid is None and gid is None:
            return None
        user = str(uid) if uid is not None else image_user.split(":", maxsplit=1)[0] or "0"
        return f"{user}:{gid}" if gid is not None else user

    def _data(self, kind: str, name: str) -> dict[str, bytes] | None:
        store = self.pod.node.store
        if kind == "Secret":
            return store.secret(self.pod.namespace, name)
        return store.config_map(self.pod.namespace, name)

    def _environment(self) -> dict[str, str]:
        """envFrom first, then env in order, each value able to use the ones before it."""
        namespace = self.pod.namespace
        env: dict[str, str] = {}
        for source in self.spec.get("envFrom") or []:
            prefix = str(source.get("prefix", ""))
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key not in source:
                    continue
                name = str(source[key]["name"])
                data = self._data(kind, name)
                if data is None and not source[key].get("optional"):
                    raise PodConfigError(
                        f"{self.ref}: envFrom: {kind} {namespace}/{name} does not exist"
                    )
                for data_key, raw in (data or {}).items():
                    env[prefix + data_key] = raw.decode(errors="replace")
        for variable in self.spec.get("env") or []:
            name = str(variable["name"])
            value = self._env_value(name, variable, env)
            if value is not None:
                env[name] = value
        return env

    def _env_value(
        self, name: str, variable: Mapping[str, Any], env: Mapping[str, str]
    ) -> str | None:
        if "valueFrom" not in variable:
            return expand(str(variable.get("value", "")), env)
        source = variable["valueFrom"]
        if "fieldRef" in source:
            return self._field(str(source["fieldRef"]["fieldPath"]), name)
        if "secretKeyRef" not in source and "configMapKeyRef" not in source:
            raise PodConfigError(
                f"{self.ref}: env {name}: valueFrom {sorted(source)} is not modelled"
            )
        kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef") or {}
        object_name, key = str(ref["name"]), str(ref["key"])
        data = self._data(kind, object_name)
        if data is not None and key in data:
            return data[key].decode(errors="replace")
        if ref.get("optional"):
            return None
        problem = "does not exist" if data is None else f"has no key {key!r}"
        raise PodConfigError(
            f"{self.ref}: env {name}: {kind} {self.pod.namespace}/{object_name} {problem}"
        )

    def _field(self, path: str, variable: str) -> str:
        pod = self.pod
        label = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if label:
            source = pod.labels if label.group(1) == "labels" else pod.annotations
            return source.get(label.group(2), "")
        values = {
            "metadata.name": pod.name,
            "metadata.namespace": pod.namespace,
            "metadata.uid": f"{pod.node.run.run_id}-{pod.name}",
            "status.podIP": pod.ip,
            "status.podIPs": pod.ip,
            "status.hostIP": pod.node.node_ip,
            "status.hostIPs": pod.node.node_ip,
            "spec.nodeName": NODE_NAME,
            "spec.serviceAccountName": str(pod.spec.get("serviceAccountName", "default")),
        }
        if path not in values:
            raise PodConfigError(f"{self.ref}: env {variable}: fieldRef {path!r} is not modelled")
        return values[path]

    def _mounts(self) -> list[Any]:
        from docker.types import Mount

        mounts = []
        for entry in self.spec.get("volumeMounts") or []:
            name = str(entry["name"])
            volume = self.pod.volumes.get(name)
            if volume is None:
                raise PodConfigError(f"{self.ref}: volumeMount {name!r} names no volume of the pod")
            target = str(entry["mountPath"])
            read_only = bool(entry.get("readOnly", False)) or volume.read_only
            sub_path = str(entry.get("subPath") or "")
            if volume.kind == "projected":
                source = volume.source
                if sub_path:
                    resolved = (Path(volume.source) / sub_path).resolve()
                    if not resolved.exists():
                        raise PodConfigError(
                            f"{self.ref}: subPath {sub_path!r} is not in volume {name!r}"
                        )
                    source = str(resolved)
                # Secret and ConfigMap volumes are always read-only in a pod.
                mounts.append(Mount(target, source, type="bind", read_only=True))
            elif sub_path:
                raise PodConfigError(
                    f"{self.ref}: subPath on a {volume.kind} volume is not modelled"
                )
            else:
                mounts.append(
                    Mount(
                        target,
                        volume.source,
                        type="volume",
                        read_only=read_only,
                        no_copy=volume.kind == "claim",
                    )
                )
        return mounts

    # --- the container's life ----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._live, name=f"ctr-{self.pod.name}-{self.name}", daemon=True
        )
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _create_and_start(self) -> None:
        api = self.pod.node.api
        created = api.create_container(
            name=self.pod.node.run.name(self.pod.name, self.name, str(self.restart_count)),
            **self._create_args,
        )
        self.container_id = created["Id"]
        api.start(self.container_id)
        self.started_at = time.monotonic()

    def _live(self) -> None:
        try:
            self._restart_loop()
        except Exception as error:
            if not self.pod.stopping.is_set():
                self.pod.error = f"{self.ref}: {type(error).__name__}: {error}"
                self.pod.phase = "Failed"
                log.exception("%s failed", self.ref)
            self.finished = True

    def _restart_loop(self) -> None:
        pod = self.pod
        stop = pod.stopping
        while not stop.is_set():
            try:
                self._create_and_start()
            except Exception as error:
                self.events.append(f"could not start: {error}")
                self.exit_code = -1
                pod.error = f"{self.ref}: could not start: {error}"
                pod.phase = "Failed"
                self.finished = True
                return
            reason = self._run_until_exit()
            self.ready = False
            if stop.is_set():
                return
            self._record_exit(reason)
            policy = pod.restart_policy
            if (
                policy == "Never"
                or (policy == "OnFailure" and self.exit_code == 0)
                or (self.init and self.exit_code == 0)
            ):
                self.finished = True
                return
            self.restart_count += 1
            delay = pod.restart_backoff(self.restart_count)
            self.events.append(
                f"restarting after {reason} (restart {self.restart_count}, back-off {delay:g}s)"
            )
            log.warning("%s: %s; restart %d in %gs", self.ref, reason, self.restart_count, delay)
            self._remove_container()
            if stop.wait(delay):
                return

    def _record_exit(self, reason: str) -> None:
        api = self.pod.node.api
        with contextlib.suppress(Exception):
            self.exit_code = int(api.inspect_container(self.container_id)["State"]["ExitCode"])
        with contextlib.suppress(Exception):
            self.last_logs = api.logs(self.container_id, tail=15).decode(errors="replace")
        self.events.append(reason)

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = self.pod.node.api.inspect_container(self.container_id)["State"]
        except Exception:
            return {"Running": False, "ExitCode": -1}
        return state

    def _run_until_exit(self) -> str:
        """Probe the running container; return why it stopped (exit or a failed probe)."""
        pod = self.pod
        schedules = [] if self.init else self._schedules()
        self.started = not any(s.kind == "startup" for s in schedules)
        self.ready = (
            self.started and not self.init and not any(s.kind == "readiness" for s in schedules)
        )
        last_state_check = 0.0
        while not pod.stopping.is_set():
            now = time.monotonic()
            if now - last_state_check >= 0.5:
                last_state_check = now
                state = self._state()
                if not state.get("Running"):
                    oom = " (OOMKilled)" if state.get("OOMKilled") else ""
                    return f"exited with code {state.get('ExitCode')}{oom}"
            for schedule in schedules:
                if schedule.active(self.started) and now >= schedule.due:
                    reason = self._probe(schedule, schedules)
                    if reason:
                        return reason
            pod.stopping.wait(pod.node.settings.tick)
        return "pod deleted"

    def _schedules(self) -> list[probes.Schedule]:
        schedules = []
        for kind in ("startup", "liveness", "readiness"):
            probe = self.spec.get(f"{kind}Probe")
            if probe:
                schedules.append(probes.Schedule(kind, probe, self.started_at))
        return schedules

    def _probe(self, schedule: probes.Schedule, schedules: list[probes.Schedule]) -> str | None:
        """Run one probe; act on its outcome as the kubelet does. A reason means the
        container was killed."""
        timing = schedule.timing
        outcome = probes.run_action(
            self.pod.node.api,
            container_id=self.container_id,
            ip=self.pod.ip,
            action=schedule.probe,
            named=self.named_ports,
            timeout=timing.timeout,
        )
        schedule.record(outcome, time.monotonic())
        self.last_probe = f"{schedule.kind}: {outcome.detail}"
        if schedule.kind == "startup" and outcome.ok:
            self.started = True
            self.ready = not any(s.kind == "readiness" for s in schedules)
            for other in schedules:
                other.due = time.monotonic() + other.timing.initial_delay
            return None
        if schedule.kind == "readiness":
            if outcome.ok and schedule.ok >= timing.success_threshold:
                self.ready = True
            elif not outcome.ok and schedule.bad >= timing.failure_threshold:
                self.ready = False
            return None
        if schedule.bad >= timing.failure_threshold:
            self._kill(self._probe_grace(schedule.probe))
            return f"{schedule.kind} probe failed {schedule.bad} times ({outcome.detail})"
        return None

    def _probe_grace(self, probe: Mapping[str, Any]) -> float:
        return float(probe.get("terminationGracePeriodSeconds", self.pod.grace))

    def _kill(self, grace: float) -> None:
        """Stop the running container the kubelet way: preStop, SIGTERM, grace, SIGKILL."""
        api = self.pod.node.api
        deadline = time.monotonic() + grace
        if grace > 0:
            self._pre_stop(grace)
            with contextlib.suppress(Exception):
                api.kill(self.container_id, signal="SIGTERM")
            while time.monotonic() < deadline and self._state().get("Running"):
                time.sleep(0.1)
        if self._state().get("Running"):
            with contextlib.suppress(Exception):
                api.kill(self.container_id, signal="SIGKILL")
            self.events.append(f"killed with SIGKILL after {grace:g}s")
        with contextlib.suppress(Exception):
            api.wait(self.container_id, timeout=30)

    def _pre_stop(self, grace: float) -> None:
        handler = (self.spec.get("lifecycle") or {}).get("preStop")
        if not handler or not self.container_id or not self._state().get("Running"):
            return
        started = time.monotonic()
        if "sleep" in handler:
            time.sleep(min(float(handler["sleep"]["seconds"]), grace))
            outcome = probes.Outcome(True, f"slept {handler['sleep']['seconds']}s")
        else:
            outcome = probes.run_action(
                self.pod.node.api,
                container_id=self.container_id,
                ip=self.pod.ip,
                action=handler,
                named=self.named_ports,
                timeout=grace,
            )
        self.events.append(f"preStop ({time.monotonic() - started:.1f}s): {outcome.detail}")
        if not outcome.ok:
            log.warning("%s: preStop failed: %s", self.ref, outcome.detail)

    def stop(self, grace: float) -> None:
        """The pod is being deleted: run the stop sequence once, then let the worker end."""
        with self._stop_lock:
            if self._stopped.is_set() or not self.container_id or self.finished:
                self._stopped.set()
                return
            self._kill(grace)
            self._stopped.set()
        if self.exit_code is None:
            self._record_exit("stopped: pod deleted")

    def _remove_container(self) -> None:
        if self.container_id:
            with contextlib.suppress(Exception):
                self.pod.node.api.remove_container(self.container_id, force=True)

    def remove(self) -> None:
        self._remove_container()
