"""Run the pods of rendered manifests on a Docker network the way the kubelet runs them, for
what the image test needs: env (values, ConfigMaps, Secrets, ``$(VAR)`` in command and args),
command and args, the user, group and fsGroup, a read-only root filesystem, dropped
capabilities, no new privileges, memory and CPU limits, emptyDirs as tmpfs, Secret volumes laid
out as the kubelet lays them out, a StatefulSet's claims as fsGroup-owned directories, init
containers run to completion first, readiness by the rendered probe, and each pod reachable
under the names of the Services that select it. Scheduling, the service account, startup and
liveness probes and preStop are accepted but not exercised here (one engine, one start per
pod); any other field of a pod or container is refused by name.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.models.containers import Container
from docker.models.networks import Network

Manifest = dict[str, Any]
# How long a container gets to do what it must; generous for a shared 2-core machine.
WAIT_SECONDS = 120
ACCEPTED_POD_FIELDS = {
    "containers",
    "initContainers",
    "securityContext",
    "volumes",
    "serviceAccountName",
    "automountServiceAccountToken",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "topologySpreadConstraints",
    "imagePullSecrets",
    "affinity",
    "nodeSelector",
    "tolerations",
    "priorityClassName",
}
ACCEPTED_CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "envFrom",
    "ports",
    "resources",
    "securityContext",
    "volumeMounts",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
    "lifecycle",
}


@dataclass
class Rendered:
    """``helm template`` output, plus the Secrets made beforehand that it refers to."""

    docs: list[Manifest]
    made_beforehand: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind: str, name: str) -> Manifest:
        (doc,) = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return doc

    def secret(self, name: str) -> dict[str, bytes]:
        for doc in self.of_kind("Secret"):
            if doc["metadata"]["name"] == name:
                return {k: base64.b64decode(v) for k, v in doc.get("data", {}).items()}
        return self.made_beforehand[name]

    def config_map(self, name: str) -> dict[str, str]:
        data: dict[str, str] = self.named("ConfigMap", name).get("data", {})
        return data

    def service_names(self, labels: dict[str, str]) -> list[str]:
        return [
            s["metadata"]["name"]
            for s in self.of_kind("Service")
            if s["spec"].get("selector") and s["spec"]["selector"].items() <= labels.items()
        ]


def memory_bytes(quantity: str) -> int:
    for suffix, factor in {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def cpu_nanos(quantity: str) -> int:
    if quantity.endswith("m"):
        return int(quantity[:-1]) * 1_000_000
    return int(float(quantity) * 1_000_000_000)


def expand(text: str, environment: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion in command and args."""
    return re.sub(r"\$\((\w+)\)", lambda m: environment.get(m.group(1), m.group(0)), text)


def kubelet_secret_volume(
    root: Path, data: dict[str, bytes], mode: int, fs_group: int | None
) -> Path:
    """A Secret volume as the kubelet writes one: the files in a timestamped directory, a
    ``..data`` symlink to it, one symlink per key; root-owned, group fsGroup, ``mode``."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    payload = root / stamp
    payload.mkdir(parents=True)
    group = 0 if fs_group is None else fs_group
    for key, value in data.items():
        path = payload / key
        path.write_bytes(value)
        os.chown(path, 0, group)
        # With an fsGroup the kubelet adds group read to every file it writes.
        path.chmod(mode | (0o440 if fs_group is not None else 0))
        (root / key).symlink_to(Path("..data") / key)
    (root / "..data").symlink_to(stamp)
    for directory in (root, payload):
        os.chown(directory, 0, group)
        directory.chmod(0o2755)
    return root


class PodRunner:
    def __init__(
        self, engine: docker.DockerClient, network: Network, rendered: Rendered, root: Path
    ) -> None:
        self.engine = engine
        self.network = network
        self.rendered = rendered
        self.root = root

    def _environment(self, container: Manifest) -> dict[str, str]:
        environment: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                environment.update(self.rendered.config_map(source["configMapRef"]["name"]))
            else:
                secret = self.rendered.secret(source["secretRef"]["name"])
                environment.update({k: v.decode() for k, v in secret.items()})
        for variable in container.get("env", []):
            if "value" in variable:
                environment[variable["name"]] = expand(variable["value"], environment)
                continue
            source = variable["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = self.rendered.secret(ref["name"])[ref["key"]].decode()
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                value = self.rendered.config_map(ref["name"])[ref["key"]]
            else:
                raise AssertionError(f"the image test does not model env source {source}")
            environment[variable["name"]] = value
        return environment

    def _mounts(
        self, workload: Manifest, pod: Manifest, container: Manifest
    ) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        fs_group = pod.get("securityContext", {}).get("fsGroup")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        tmpfs: dict[str, str] = {}
        binds: dict[str, dict[str, str]] = {}
        for mount in container.get("volumeMounts", []):
            where = self.root / workload["metadata"]["name"] / container["name"] / mount["name"]
            if mount["name"] in claims:
                # A fresh claim: the kubelet gives its root to the fsGroup, setgid.
                where.mkdir(parents=True, exist_ok=True)
                os.chown(where, 0, fs_group or 0)
                where.chmod(0o2775)
                binds[str(where)] = {"bind": mount["mountPath"], "mode": "rw"}
                continue
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                size = memory_bytes(volume["emptyDir"].get("sizeLimit", "64Mi"))
                tmpfs[mount["mountPath"]] = f"size={size},mode=1777"
            elif "secret" in volume:
                source = volume["secret"]
                path = kubelet_secret_volume(
                    where,
                    self.rendered.secret(source["secretName"]),
                    source.get("defaultMode", 0o644),
                    fs_group,
                )
                binds[str(path)] = {"bind": mount["mountPath"], "mode": "ro"}
            else:
                raise AssertionError(f"the image test does not model volume {volume}")
        return tmpfs, binds

    def _start(
        self, workload: Manifest, pod: Manifest, container: Manifest, name: str, aliases: list[str]
    ) -> Container:
        unknown = (set(pod) - ACCEPTED_POD_FIELDS) | (set(container) - ACCEPTED_CONTAINER_FIELDS)
        assert not unknown, f"{name}: the image test does not model {sorted(unknown)}"
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        environment = self._environment(container)
        tmpfs, binds = self._mounts(workload, pod, container)
        limits = container.get("resources", {}).get("limits", {})
        options: dict[str, Any] = {}
        if "command" in container:
            options["entrypoint"] = [expand(c, environment) for c in container["command"]]
        if "args" in container:
            options["command"] = [expand(a, environment) for a in container["args"]]
        if "runAsUser" in security:
            options["user"] = f"{security['runAsUser']}:{security.get('runAsGroup', 0)}"
        if "fsGroup" in security:
            options["group_add"] = [str(security["fsGroup"])]
        started = self.engine.containers.run(
            container["image"],
            environment=environment,
            read_only=security.get("readOnlyRootFilesystem", False),
            cap_drop=security.get("capabilities", {}).get("drop", []),
            security_opt=[]
            if security.get("allowPrivilegeEscalation", True)
            else ["no-new-privileges"],
            tmpfs=tmpfs,
            volumes=binds,
            mem_limit=memory_bytes(limits["memory"]) if "memory" in limits else None,
            nano_cpus=cpu_nanos(limits["cpu"]) if "cpu" in limits else None,
            ports={
                f"{p['containerPort']}/tcp": ("127.0.0.1", None) for p in container.get("ports", [])
            },
            network=self.network.name,
            name=f"{self.network.name}-{name}",
            detach=True,
            **options,
        )
        if aliases:
            self.network.disconnect(started)
            self.network.connect(started, aliases=aliases)
        return started

    def run(self, workload: Manifest) -> Container:
        """Run a Deployment's, StatefulSet's or Job's pod: init containers to completion, then
        the main container, detached, under the names of the Services that select it."""
        template = workload["spec"]["template"]
        pod = template["spec"]
        name = workload["metadata"]["name"]
        for init in pod.get("initContainers", []):
            done = self._start(workload, pod, init, f"{name}-{init['name']}", [])
            outcome = done.wait(timeout=WAIT_SECONDS)
            logs = done.logs().decode(errors="replace")
            assert outcome["StatusCode"] == 0, f"{name}: init container {init['name']}:\n{logs}"
        (container,) = pod["containers"]
        aliases = self.rendered.service_names(template["metadata"]["labels"])
        return self._start(workload, pod, container, name, aliases)


def host_port(container: Container, port: int) -> int:
    container.reload()
    return int(container.ports[f"{port}/tcp"][0]["HostPort"])


def _probe_once(container: Container, probe: Manifest, ports: dict[str, int]) -> str | None:
    """None when the probe succeeds, else why not."""
    if "exec" in probe:
        code, output = container.exec_run(probe["exec"]["command"])
        return None if code == 0 else f"exit {code}: {output.decode(errors='replace')}"
    if "httpGet" in probe:
        port = probe["httpGet"]["port"]
        number = ports[port] if isinstance(port, str) else port
        url = f"http://127.0.0.1:{host_port(container, number)}{probe['httpGet']['path']}"
        try:
            response = httpx.get(url, timeout=probe.get("timeoutSeconds", 1))
        except httpx.TransportError as error:
            return repr(error)
        return None if 200 <= response.status_code < 400 else f"{response.status_code}"
    raise AssertionError(f"the image test does not model probe {probe}")


def wait_ready(container: Container, workload: Manifest) -> None:
    """Until the rendered readiness probe succeeds, as the kubelet asks it."""
    (spec,) = workload["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in spec.get("ports", []) if "name" in p}
    deadline = time.monotonic() + WAIT_SECONDS
    why: str | None = "not asked yet"
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            break
        why = _probe_once(container, spec["readinessProbe"], ports)
        if why is None:
            return
        time.sleep(1)
    logs = container.logs().decode(errors="replace")
    raise AssertionError(f"{container.name} never became ready ({why}):\n{logs}")
