"""Probe and lifecycle-handler actions as the kubelet runs them: from the node to the pod's
address (httpGet, tcpSocket), or inside the container (exec)."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ProbeSpecError(ValueError):
    """A probe the kubelet could not even attempt (a named port the container lacks)."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


@dataclass(frozen=True)
class ProbeTiming:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: Mapping[str, Any]) -> ProbeTiming:
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds", 0)),
            period=float(probe.get("periodSeconds", 10)),
            timeout=float(probe.get("timeoutSeconds", 1)),
            success_threshold=int(probe.get("successThreshold", 1)),
            failure_threshold=int(probe.get("failureThreshold", 3)),
        )


@dataclass
class Schedule:
    """One probe of a container: when it runs next and its consecutive results."""

    kind: str  # startup, liveness or readiness
    probe: Mapping[str, Any]
    started_at: float
    due: float = 0.0
    ok: int = 0
    bad: int = 0

    def __post_init__(self) -> None:
        self.timing = ProbeTiming.of(self.probe)
        self.due = self.started_at + self.timing.initial_delay

    def active(self, started: bool) -> bool:
        """The startup probe runs until it passes; the others only after it."""
        return started != (self.kind == "startup")

    def record(self, outcome: Outcome, now: float) -> None:
        self.due = now + self.timing.period
        self.ok, self.bad = (self.ok + 1, 0) if outcome.ok else (0, self.bad + 1)


def resolve_port(port: object, named: Mapping[str, int], what: str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(str(port))
    if str(port) not in named:
        raise ProbeSpecError(f"{what}: port {port!r} is not a named port of the container")
    return named[str(port)]


def http_get(
    ip: str, action: Mapping[str, Any], named: Mapping[str, int], timeout: float
) -> Outcome:
    port = resolve_port(action.get("port"), named, "httpGet")
    path = str(action.get("path", "/")) or "/"
    scheme = str(action.get("scheme", "HTTP")).upper()
    headers = {"User-Agent": "kube-probe/1.34", "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[str(header["name"])] = str(header.get("value", ""))
    connection: http.client.HTTPConnection
    if scheme == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(ip, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(ip, port, timeout=timeout)
    target = f"{scheme} GET {ip}:{port}{path}"
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read(1024)
        ok = 200 <= response.status < 400
        return Outcome(ok, f"{target}: HTTP {response.status}")
    except (OSError, http.client.HTTPException) as error:
        return Outcome(False, f"{target}: {error or type(error).__name__}")
    finally:
        connection.close()


def tcp_socket(
    ip: str, action: Mapping[str, Any], named: Mapping[str, int], timeout: float
) -> Outcome:
    port = resolve_port(action.get("port"), named, "tcpSocket")
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return Outcome(True, f"TCP {ip}:{port}: connected")
    except OSError as error:
        return Outcome(False, f"TCP {ip}:{port}: {error}")


def exec_probe(api: Any, container_id: str, command: list[str], timeout: float) -> Outcome:
    """Run ``command`` in the container; exit 0 is success. A command still running after
    ``timeout`` counts as a failure, as the kubelet counts it."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            exec_id = api.exec_create(container_id, command, stdout=True, stderr=True)["Id"]
            output = api.exec_start(exec_id)
            result["output"] = (
                output.decode(errors="replace") if isinstance(output, bytes) else str(output)
            )
            result["code"] = api.exec_inspect(exec_id)["ExitCode"]
        except Exception as error:
            result["error"] = str(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    shown = " ".join(command)
    if worker.is_alive():
        return Outcome(False, f"exec {shown}: timed out after {timeout:g}s")
    if "error" in result:
        return Outcome(False, f"exec {shown}: {result['error']}")
    code = result.get("code")
    tail = result.get("output", "").strip()[-300:]
    return Outcome(code == 0, f"exec {shown}: exit {code}" + (f": {tail}" if tail else ""))


def run_action(
    api: Any,
    *,
    container_id: str,
    ip: str,
    action: Mapping[str, Any],
    named: Mapping[str, int],
    timeout: float,
) -> Outcome:
    if "httpGet" in action:
        return http_get(ip, action["httpGet"], named, timeout)
    if "tcpSocket" in action:
        return tcp_socket(ip, action["tcpSocket"], named, timeout)
    if "exec" in action:
        return exec_probe(
            api, container_id, [str(c) for c in action["exec"].get("command") or []], timeout
        )
    raise ProbeSpecError(f"no probe action the rehearsal models in {sorted(action)}")
