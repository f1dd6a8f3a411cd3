"""The Docker engine under the rehearsal: connecting to it, labelling what a run creates, the
image the rehearsal's own containers use, and removing everything again."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

RUN_LABEL = "shopstack.rehearse/run"
# The process that made a run and its host: a run whose process is gone (SIGKILL) left
# its objects behind, and `shopstack-rehearse clean` removes them.
PROCESS_LABEL = "shopstack.rehearse/process"
# Where a run writes its Secret and ConfigMap volumes: <temp>/<prefix><run id>-<random>.
VOLUMES_PREFIX = "shopstack-rehearse-"
OBJECT_LABEL = "shopstack.rehearse/object"
ROLE_LABEL = "shopstack.rehearse/role"

log = logging.getLogger("shopstack_rehearse")


class RehearsalError(RuntimeError):
    """The rehearsal failed; the message names the object and what went wrong."""


class EngineMissingError(RehearsalError):
    pass


@dataclass(frozen=True)
class ImageMap:
    """Rendered image references mapped to locally built tags (no registry here).

    ``FROM=TO`` maps one reference. Each ``*`` in FROM matches any text, and each ``*`` in
    TO is replaced by what the ``*`` in the same place matched:
    ``shopstack/*:*=shopstack/*:dev`` runs every shopstack image from its ``:dev`` build.
    The first rule that matches wins."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, pairs: list[str]) -> ImageMap:
        rules = []
        for pair in pairs:
            source, sep, target = pair.partition("=")
            if not sep or not source or not target:
                raise RehearsalError(f"--image {pair!r}: expected FROM=TO")
            if target.count("*") > source.count("*"):
                raise RehearsalError(f"--image {pair!r}: TO has more * than FROM")
            rules.append((source, target))
        return cls(tuple(rules))

    def resolve(self, image: str) -> str:
        for source, target in self.rules:
            pattern = "(.*?)".join(re.escape(part) for part in source.split("*"))
            match = re.fullmatch(pattern, image)
            if match:
                parts = target.split("*")
                captured = [*match.groups()]
                return parts[0] + "".join(captured[i] + part for i, part in enumerate(parts[1:]))
        return image


def _client_error_message() -> str:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return (
        f"no Docker engine answers at {where}: the rehearsal runs every pod as a container. "
        "Start one (e.g. ../shared/airgap/docker-up) and try again."
    )


def connect() -> Any:
    """A docker client, or an EngineMissingError that says how to get an engine."""
    try:
        import docker
    except ImportError as error:  # pragma: no cover - a dependency of this package
        raise EngineMissingError("the docker package is not installed") from error
    try:
        client = docker.from_env(timeout=120, max_pool_size=64)
        client.ping()
    except Exception as error:
        raise EngineMissingError(f"{_client_error_message()} ({error})") from error
    return client


INFRA_FILES = ("Dockerfile", "infra.py")


def infra_image(client: Any, base: str) -> str:
    """The image of the rehearsal's own containers (a pod's network holder, a Service's
    address, volume preparation): ``base`` plus iptables, built once per content."""
    files = {
        name: resources.files("shopstack_rehearse.images").joinpath(name).read_bytes()
        for name in INFRA_FILES
    }
    digest = hashlib.sha256(base.encode() + b"".join(files[n] for n in INFRA_FILES)).hexdigest()[
        :12
    ]
    tag = f"shopstack-rehearse/infra:{digest}"
    try:
        client.images.get(tag)
        return tag
    except Exception:  # noqa: S110 - not built yet: build it below
        pass
    try:
        client.images.get(base)
    except Exception as error:
        raise RehearsalError(
            f"the base image {base} for the rehearsal's own containers is not in the local engine "
            "(set PYTHON_IMAGE, e.g. `. ../shared/airgap/images.env`)"
        ) from error
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    context.seek(0)
    log.info("building %s from %s (once)", tag, base)
    try:
        client.images.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            rm=True,
            forcerm=True,
        )
    except Exception as error:
        raise RehearsalError(f"could not build the rehearsal image {tag}: {error}") from error
    return tag


@dataclass
class Run:
    """Everything one rehearsal creates carries its run id, so clean-up finds all of it."""

    client: Any
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def labels(self, ref: str = "", role: str = "") -> dict[str, str]:
        labels = {RUN_LABEL: self.run_id, PROCESS_LABEL: f"{socket.gethostname()}:{os.getpid()}"}
        if ref:
            labels[OBJECT_LABEL] = ref[:250]
        if role:
            labels[ROLE_LABEL] = role
        return labels

    def name(self, *parts: str) -> str:
        """A Docker name for something of this run."""
        raw = "-".join(["rh", self.run_id, *parts])
        clean = "".join(c if c.isalnum() or c in "-_." else "-" for c in raw)
        return clean[:200]

    def clean_up(self) -> list[str]:
        """Remove every container, network and volume of this run; return what failed."""
        return clean_up(self.client, self.run_id)


def abandoned_runs(client: Any) -> set[str]:
    """Runs made on this host by a process that no longer exists."""
    host = socket.gethostname()
    runs: set[str] = set()
    for container in client.api.containers(all=True, filters={"label": PROCESS_LABEL}):
        labels = container.get("Labels") or {}
        owner_host, _, pid = labels.get(PROCESS_LABEL, "").rpartition(":")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            runs.add(labels[RUN_LABEL])
    return runs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_up(client: Any, run_id: str) -> list[str]:
    problems: list[str] = []
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    deadline = time.monotonic() + 60
    # The low-level listing: the high-level one inspects each container, racing the pods'
    # own removal.
    while containers := client.api.containers(all=True, filters=selector):
        for container in containers:
            try:
                client.api.remove_container(container["Id"], force=True, v=True)
            except Exception as error:
                gone = "No such container" in str(error) or "already in progress" in str(error)
                if not gone and time.monotonic() > deadline:
                    problems.append(f"container {container['Names']}: {error}")
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for network in client.networks.list(filters=selector):
        try:
            network.remove()
        except Exception as error:
            problems.append(f"network {network.name}: {error}")
    for volume in client.volumes.list(filters=selector):
        with contextlib.suppress(Exception):
            volume.remove(force=True)
        with contextlib.suppress(Exception):
            client.volumes.get(volume.name)
            problems.append(f"volume {volume.name}: still there")
    for directory in Path(tempfile.gettempdir()).glob(f"{VOLUMES_PREFIX}{run_id}-*"):
        shutil.rmtree(directory, ignore_errors=True)
    return problems
