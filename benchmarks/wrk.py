"""wrk on loopback (``make wrk`` installs it): one run's requests/s and latency percentiles."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(url: str, connections: int, duration: int, headers: dict[str, str]) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (make wrk, or apt-get install -y wrk)")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(  # noqa: S603 - wrk against loopback
        [*argv, url], capture_output=True, text=True, check=True
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output:\n{out}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=_latency_ms(out, "50"),
        p99_ms=_latency_ms(out, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(0) if errors else "",
    )


def median(results: list[WrkResult]) -> WrkResult:
    """The run with the median throughput (its own latencies with it)."""
    ordered = sorted(results, key=lambda r: r.requests_per_second)
    middle = ordered[len(ordered) // 2]
    return WrkResult(
        requests_per_second=statistics.median(r.requests_per_second for r in results),
        p50_ms=middle.p50_ms,
        p99_ms=middle.p99_ms,
        non_2xx=sum(r.non_2xx for r in results),
        errors="; ".join(r.errors for r in results if r.errors),
    )


def problems(name: str, results: list[WrkResult]) -> list[str]:
    """What makes runs invalid: answers other than 2xx, socket errors."""
    return [
        f"{name}: {result.non_2xx} non-2xx answers {result.errors}".rstrip()
        for result in results
        if result.non_2xx or result.errors
    ]
