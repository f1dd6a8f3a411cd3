"""The controllers' part: Deployments (rolling updates with maxSurge and maxUnavailable,
or Recreate), StatefulSets (ordinals, ordered start, claims per ordinal, updates from the
highest ordinal down) and Jobs (retries with back-off, a deadline)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shopstack_rehearse.engine import RehearsalError
from shopstack_rehearse.manifests import KubeObject, percent_or_int
from shopstack_rehearse.pods import Pod

log = logging.getLogger("shopstack_rehearse")

PodFactory = Callable[..., Pod]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class WorkloadController:
    obj: KubeObject
    make_pod: PodFactory
    max_replicas: int
    pods: list[Pod] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The minReplicas of a HorizontalPodAutoscaler aimed at the workload: the autoscaler
    # raises the count to it at once (a chart that autoscales renders no replicas at all).
    autoscaled_min: int = 0

    @property
    def template(self) -> dict[str, Any]:
        template: dict[str, Any] = self.obj.spec.get("template") or {}
        return template

    @property
    def revision(self) -> str:
        return template_hash(self.template)

    @property
    def wanted(self) -> int:
        return max(int(self.obj.spec.get("replicas", 1)), self.autoscaled_min)

    @property
    def desired(self) -> int:
        return min(self.wanted, self.max_replicas)

    def capped_note(self) -> str | None:
        wanted = self.wanted
        if wanted > self.max_replicas:
            run = self.max_replicas
            return f"{self.obj.ref}: {wanted} replicas rendered, {run} run (--max-replicas)"
        return None

    @property
    def min_ready_seconds(self) -> float:
        return float(self.obj.spec.get("minReadySeconds", 0))

    def available(self, pod: Pod) -> bool:
        return (
            pod.ready
            and pod.ready_since is not None
            and (time.monotonic() - pod.ready_since >= self.min_ready_seconds)
        )

    def live(self) -> list[Pod]:
        self.pods = [p for p in self.pods if not p.deleted.is_set()]
        return [p for p in self.pods if not p.terminating]

    def draining(self) -> bool:
        """Some replaced pod is still stopping (a rollout is done once they are gone)."""
        return any(p.terminating and not p.deleted.is_set() for p in self.pods)

    def update(self, obj: KubeObject) -> None:
        self.obj = obj

    def restart(self) -> None:
        """``kubectl rollout restart``: a new template annotation, so a new revision."""
        template = json.loads(json.dumps(self.template))
        template.setdefault("metadata", {}).setdefault("annotations", {})[RESTARTED_AT] = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f".{time.time_ns() % 10**9}"
        )
        body = json.loads(json.dumps(self.obj.body))
        body["spec"]["template"] = template
        self.obj = KubeObject(body=body, namespace=self.obj.namespace)

    def settled(self) -> bool:
        raise NotImplementedError

    def reconcile(self) -> None:
        raise NotImplementedError

    def delete_all(self, grace: float | None = None) -> None:
        for pod in self.pods:
            pod.delete(grace, wait=False)
        for pod in self.pods:
            pod.deleted.wait(120)
        self.pods = []

    def _spawn(self, name: str, **extra: Any) -> Pod:
        metadata = self.template.get("metadata") or {}
        extra.setdefault("spec", self.template.get("spec") or {})
        pod = self.make_pod(
            owner=self.obj.ref,
            name=name,
            namespace=self.obj.namespace,
            labels=metadata.get("labels") or {},
            annotations=metadata.get("annotations") or {},
            **extra,
        )
        pod.revision = self.revision
        self.pods.append(pod)
        pod.start()
        return pod


class DeploymentController(WorkloadController):
    def _strategy(self) -> tuple[str, int, int]:
        strategy = self.obj.spec.get("strategy") or {}
        kind = str(strategy.get("type", "RollingUpdate"))
        rolling = strategy.get("rollingUpdate") or {}
        surge = percent_or_int(rolling.get("maxSurge", "25%"), self.desired, round_up=True)
        unavailable = percent_or_int(
            rolling.get("maxUnavailable", "25%"), self.desired, round_up=False
        )
        if kind == "RollingUpdate" and surge == 0 and unavailable == 0:
            raise RehearsalError(f"{self.obj.ref}: maxSurge and maxUnavailable cannot both be 0")
        return kind, surge, unavailable

    def _new_name(self) -> str:
        return f"{self.obj.name}-{self.revision}-{secrets.token_hex(3)[:5]}"

    def settled(self) -> bool:
        live = self.live()
        return (
            not self.draining()
            and len(live) == self.desired
            and all(p.revision == self.revision and self.available(p) for p in live)
        )

    def reconcile(self) -> None:
        live = self.live()
        revision = self.revision
        current = [p for p in live if p.revision == revision]
        old = [p for p in live if p.revision != revision]
        kind, surge, unavailable = self._strategy()
        desired = self.desired
        if kind == "Recreate":
            if old:
                for pod in old:
                    pod.delete(wait=False)
                return
            if any(p.terminating for p in self.pods):
                return
            for _ in range(desired - len(current)):
                self._spawn(self._new_name())
            return
        # Scale up the current revision within desired + maxSurge.
        room = desired + surge - len(live)
        for _ in range(max(0, min(room, desired - len(current)))):
            current.append(self._spawn(self._new_name()))
        # Scale down while at least desired - maxUnavailable stay available.
        available = sum(1 for p in live if self.available(p))
        floor = desired - unavailable
        removable = sorted(old, key=lambda p: (self.available(p), p.created_at))
        extra = current[desired:]
        for pod in [*removable, *extra]:
            if pod.ready and available - 1 < floor:
                break
            if pod.ready:
                available -= 1
            pod.delete(wait=False)


class StatefulSetController(WorkloadController):
    def __init__(
        self, obj: KubeObject, make_pod: PodFactory, max_replicas: int, claim: Callable[[str], str]
    ) -> None:
        super().__init__(obj, make_pod, max_replicas)
        self.claim = claim  # claim name -> Docker volume, created once per ordinal

    def _by_ordinal(self) -> dict[int, Pod]:
        return {p.ordinal: p for p in self.live() if p.ordinal is not None}

    def settled(self) -> bool:
        pods = self._by_ordinal()
        partition = self._partition()
        return (
            not self.draining()
            and len(pods) == self.desired
            and all(
                self.available(pods[i]) and (i < partition or pods[i].revision == self.revision)
                for i in range(self.desired)
            )
        )

    def _partition(self) -> int:
        strategy = self.obj.spec.get("updateStrategy") or {}
        return int((strategy.get("rollingUpdate") or {}).get("partition", 0))

    def reconcile(self) -> None:
        pods = self._by_ordinal()
        terminating = [p for p in self.pods if p.terminating and not p.deleted.is_set()]
        if self._scale(pods, terminating) or terminating:
            return
        strategy = (self.obj.spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and all(self.available(p) for p in pods.values()):
            # One pod at a time, from the highest ordinal down to the partition.
            for ordinal in range(self.desired - 1, self._partition() - 1, -1):
                stale = pods.get(ordinal)
                if stale is not None and stale.revision != self.revision:
                    stale.delete(wait=False)
                    return

    def _scale(self, pods: dict[int, Pod], terminating: list[Pod]) -> bool:
        """Create missing ordinals (in order, each after the one before is ready, unless
        Parallel) and remove extra ones from the top; True while that is under way."""
        parallel = self.obj.spec.get("podManagementPolicy") == "Parallel"
        for ordinal in range(self.desired):
            if ordinal in pods:
                if not parallel and not self.available(pods[ordinal]):
                    return True
                continue
            # A replacement waits for its predecessor of the same name to be gone.
            if any(p.ordinal == ordinal for p in terminating):
                return True
            self._spawn_ordinal(ordinal)
            if not parallel:
                return True
        extra = [
            pod for ordinal, pod in sorted(pods.items(), reverse=True) if ordinal >= self.desired
        ]
        if extra:
            extra[0].delete(wait=False)
            return True
        return False

    def _spawn_ordinal(self, ordinal: int) -> None:
        """Pod ``<name>-<ordinal>`` with a claim per template, ``<template>-<pod>``, as a
        volume of the template's name (what the StatefulSet controller adds)."""
        name = f"{self.obj.name}-{ordinal}"
        claims = {}
        volumes = []
        for template in self.obj.spec.get("volumeClaimTemplates") or []:
            volume = str(template["metadata"]["name"])
            claim = f"{volume}-{name}"
            claims[claim] = self.claim(claim)
            volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
        spec = dict(self.template.get("spec") or {})
        spec["volumes"] = [*(spec.get("volumes") or []), *volumes]
        service = str(self.obj.spec.get("serviceName") or "")
        pod = self._spawn(name, subdomain=service, claim_volumes=claims, spec=spec)
        pod.ordinal = ordinal


@dataclass
class JobOutcome:
    succeeded: bool
    detail: str
    logs: str


def run_job(
    obj: KubeObject, make_pod: PodFactory, backoff_seconds: float, max_backoff: float = 360.0
) -> JobOutcome:
    """Run a Job (or a bare Pod) to completion, as the Job controller and kubelet would."""
    if obj.kind == "Pod":
        template: dict[str, Any] = {"metadata": obj.metadata, "spec": obj.spec}
        backoff_limit = 0
        deadline = None
    else:
        template = obj.spec.get("template") or {}
        backoff_limit = int(obj.spec.get("backoffLimit", 6))
        limit = obj.spec.get("activeDeadlineSeconds")
        deadline = None if limit is None else time.monotonic() + float(limit)
    metadata = template.get("metadata") or {}
    spec = template.get("spec") or {}
    restart_policy = spec.get("restartPolicy")
    if restart_policy not in {"Never", "OnFailure"}:
        raise RehearsalError(
            f"{obj.ref}: a Job's pods need restartPolicy Never or OnFailure, not {restart_policy!r}"
        )
    failures = 0
    logs = ""
    while True:
        name = obj.name if obj.kind == "Pod" else f"{obj.name}-{secrets.token_hex(3)[:5]}"
        labels = {**(metadata.get("labels") or {}), "job-name": obj.name}
        pod = make_pod(
            owner=obj.ref,
            name=name,
            namespace=obj.namespace,
            labels=labels,
            annotations=metadata.get("annotations") or {},
            spec=spec,
        )
        pod.start()
        while not pod.wait_finished(0.5):
            if deadline is not None and time.monotonic() > deadline:
                pod.delete(0)
                return JobOutcome(
                    False, f"{obj.ref}: DeadlineExceeded: activeDeadlineSeconds passed", _logs(pod)
                )
            if restart_policy == "OnFailure" and pod.restarts > backoff_limit:
                pod.delete(0)
                return JobOutcome(
                    False,
                    f"{obj.ref}: BackoffLimitExceeded after {pod.restarts} restarts",
                    _logs(pod),
                )
        pod.deleted.wait(60)
        logs = _logs(pod)
        if pod.phase == "Succeeded":
            return JobOutcome(True, f"{obj.ref}: succeeded", logs)
        failures += 1
        reason = pod.error or "; ".join(c.describe() for c in pod.containers)
        if failures > backoff_limit:
            return JobOutcome(
                False,
                f"{obj.ref}: failed {failures} time(s), backoffLimit {backoff_limit}: {reason}",
                logs,
            )
        delay = min(backoff_seconds * 2 ** (failures - 1), max_backoff)
        log.warning("%s: pod failed (%s); retry %d in %gs", obj.ref, reason, failures, delay)
        if deadline is not None and time.monotonic() + delay > deadline:
            return JobOutcome(
                False, f"{obj.ref}: DeadlineExceeded: activeDeadlineSeconds passed", logs
            )
        time.sleep(delay)


def _logs(pod: Pod) -> str:
    return "\n".join(
        f"[{c.name}] {c.last_logs.strip()}"
        for c in [*pod.init_containers, *pod.containers]
        if c.last_logs
    )
