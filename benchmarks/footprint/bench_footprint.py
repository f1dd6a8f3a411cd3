"""Footprint and start: how long `make up` takes to be up, and what each process it starts
holds in memory once idle.

Not a test: it prints figures and writes test-results/bench/footprint.json. It runs
`shopstack-devstack up` (what `make up` runs) through ``LocalPlatform``, on free ports with a
data directory of its own:

1. a first (cold) start, which runs initdb and every migration for the first time; stopped;
2. warm starts on the same data, taking turns, ``--rounds`` of each, the median kept:
   - ``before``: as `make up` started before: one part after another
     (``SHOPSTACK_START_ORDER=sequential``) and every process compiling each module it
     imports from source (``SHOPSTACK_COMPILE_BYTECODE=false``, and the bytecode looked for
     in an empty ``PYTHONPYCACHEPREFIX`` with ``PYTHONDONTWRITEBYTECODE=1``, as on a machine
     that sets it and a checkout uv installed without compiling);
   - ``sequential``: the same order, with the bytecode compiled (what parallel starting
     alone gains);
   - ``parallel``: the default.
   A start is timed from launching the command to the line that says the platform is up
   (every service's /readyz answered 200, NGINX's too);
3. after the last parallel start, a few requests through NGINX (a sign-in, a profile read,
   the product list), then the RSS, PSS and USS of every process of the platform.

    make bench-footprint
    BENCH_ROUNDS=3 make bench-footprint
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.report import Row, row, write_result
from shopstack_devstack.local_platform import LocalPlatform
from shopstack_devstack.ports import free_port
from shopstack_devstack.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD

PORTS = ("nginx", "gateway", "users", "orders", "orders_relay", "postgres", "redis")
RSS_TARGET_MIB = 120.0
WARM_START_TARGET_S = 8.0
MIB = 2**20
_PHASE = re.compile(r"^start-up phase (\S+): ([\d.]+)s to ([\d.]+)s$")


@dataclass(frozen=True)
class Start:
    order: str
    seconds: float
    phases: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Footprint:
    label: str
    service: bool  # one of shopstack's own processes (the 120 MiB bound is theirs)
    rss: float
    pss: float
    uss: float


# The environment of each kind of start; "before" gets its empty bytecode cache in main().
KINDS: dict[str, dict[str, str]] = {
    "before": {
        "SHOPSTACK_START_ORDER": "sequential",
        "SHOPSTACK_COMPILE_BYTECODE": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    },
    "sequential": {"SHOPSTACK_START_ORDER": "sequential"},
    "parallel": {"SHOPSTACK_START_ORDER": "parallel"},
}


def timed_start(platform: LocalPlatform, order: str, name: str = "") -> Start:
    platform.extra_env = dict(KINDS[order])
    began = time.monotonic()
    platform.start()
    seconds = time.monotonic() - began
    phases: dict[str, tuple[float, float]] = {}
    for line in platform.output:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("service") == "devstack" and (
            match := _PHASE.match(str(record.get("message")))
        ):
            phases[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return Start(name or order, seconds, phases)


def exercise(base: str) -> None:
    """A few requests that reach every service: users (sign-in, profile), orders (products),
    the gateway and NGINX in front of both."""
    form = urllib.parse.urlencode(
        {"grant_type": "password", "username": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}
    ).encode()
    with urllib.request.urlopen(base + "/api/v1/auth/token", data=form, timeout=10) as answer:  # noqa: S310 - loopback
        token = json.load(answer)["access_token"]
    for _ in range(5):
        for path, headers in (
            ("/api/v1/users/me", {"Authorization": f"Bearer {token}"}),
            ("/api/v1/products", {}),
            ("/readyz", {}),
        ):
            request = urllib.request.Request(base + path, headers=headers)  # noqa: S310 - loopback
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                answer.read()


def label(process: psutil.Process) -> tuple[str, bool]:
    """What a process is, and whether it is one of shopstack's own."""
    command = " ".join(process.cmdline())
    parent = process.parent()
    parent_command = " ".join(parent.cmdline()) if parent else ""
    ours = (
        [
            (f"gunicorn: master [shopstack_{name}" in command, f"{name} (gunicorn master)")
            for name in ("users", "orders", "gateway")
        ]
        + [
            (f"gunicorn: worker [shopstack_{name}" in command, f"{name} (gunicorn worker)")
            for name in ("users", "orders", "gateway")
        ]
        + [
            (f"-m shopstack_{name} serve" in command, name)
            for name in ("users", "orders", "gateway")
        ]
        + [
            (f"-m shopstack_{name} serve" in parent_command, f"{name} (worker)")
            for name in ("users", "orders", "gateway")
        ]
        + [("-m shopstack_orders relay" in command, "orders relay")]
    )
    for matches, name in ours:
        if matches:
            return name, True
    executable = command.split(" ", 1)[0]
    for other in ("postgres", "redis", "nginx"):
        if other in executable:
            return other, False
    return command[:40], False


def footprints(pid: int) -> list[Footprint]:
    found: list[Footprint] = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            name, service = label(process)
            memory = process.memory_full_info()
        except psutil.Error:
            continue  # gone meanwhile
        found.append(Footprint(name, service, memory.rss / MIB, memory.pss / MIB, memory.uss / MIB))
    return sorted(found, key=lambda f: (not f.service, f.label, -f.rss))


def print_start(starts: list[Start]) -> None:
    for start in starts:
        print(f"\n  {start.order} start, {start.seconds:.1f}s from launch to up; phases (s):")
        for phase, (begin, end) in sorted(start.phases.items(), key=lambda item: item[1]):
            bar = " " * int(begin * 4) + "#" * max(1, int((end - begin) * 4))
            print(f"    {phase:<15} {begin:6.2f} {end:6.2f} {end - begin:6.2f}  {bar}")
        print(f"    {'sum of phases':<15} {sum(e - b for b, e in start.phases.values()):20.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "1")))
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="shopstack-bench-footprint-") as root:
        platform = LocalPlatform(
            data_dir=Path(root) / "devstack", ports={name: free_port() for name in PORTS}
        )
        KINDS["before"]["PYTHONPYCACHEPREFIX"] = str(Path(root) / "no-bytecode")
        cold = timed_start(platform, "parallel", "cold (first)")
        platform.stop()
        warm: dict[str, list[Start]] = {kind: [] for kind in KINDS}
        try:
            for round_ in range(args.rounds):
                for order in KINDS:
                    warm[order].append(timed_start(platform, order))
                    if order == "parallel" and round_ == args.rounds - 1:
                        break  # the last one stays up to be measured
                    platform.stop()
            assert platform.process is not None
            exercise(platform.url)
            time.sleep(1)  # idle: what the requests allocated and freed settles
            measured = footprints(platform.process.pid)
        finally:
            platform.stop()

    seconds = {order: statistics.median(s.seconds for s in runs) for order, runs in warm.items()}
    print(f"\nmake up, launch to up (median of {args.rounds}; cold: one first start)")
    print(f"  cold (first start, initdb, parallel) {cold.seconds:6.1f}s")
    print(f"  warm, before: sequential, no bytecode {seconds['before']:6.1f}s")
    print(f"  warm, sequential order                {seconds['sequential']:6.1f}s")
    print(f"  warm, parallel order (make up)        {seconds['parallel']:6.1f}s")
    print_start([cold, *(runs[-1] for runs in warm.values())])
    met = seconds["parallel"] <= WARM_START_TARGET_S
    target = f"<= {WARM_START_TARGET_S:g} s"
    rows += [
        row(
            "make up warm start, launch to up (vs as before)", seconds["parallel"], "s",
            baseline_name="as before: sequential, modules compiled at import",
            baseline=seconds["before"], ratio=round(seconds["parallel"] / seconds["before"], 3),
            target=target, met=met,
        ),
        row(
            "make up warm start, launch to up (vs sequential)", seconds["parallel"], "s",
            baseline_name="the sequential order, bytecode compiled",
            baseline=seconds["sequential"],
            ratio=round(seconds["parallel"] / seconds["sequential"], 3),
            target=target, met=met,
        ),
    ]  # fmt: skip
    rows.append(row("make up cold start (first: initdb, migrations)", cold.seconds, "s"))

    print("\nmemory of every process, idle after the start and a few requests (MiB)")
    print(f"  {'process':<26}{'RSS':>8}{'PSS':>8}{'USS':>8}")
    for footprint in measured:
        print(
            f"  {footprint.label:<26}{footprint.rss:8.1f}{footprint.pss:8.1f}{footprint.uss:8.1f}"
            + ("  over the bound" if footprint.service and footprint.rss > RSS_TARGET_MIB else "")
        )
    seen: dict[str, int] = {}
    for footprint in (f for f in measured if f.service):
        seen[footprint.label] = seen.get(footprint.label, 0) + 1
        rows.append(
            row(
                f"RSS idle: {footprint.label} #{seen[footprint.label]}", footprint.rss, "MiB",
                target=f"<= {RSS_TARGET_MIB:g} MiB", met=footprint.rss <= RSS_TARGET_MIB,
            )
        )  # fmt: skip
    others = [f for f in measured if not f.service]
    for name in sorted({f.label for f in others}):
        group = [f for f in others if f.label == name]
        rows.append(
            row(f"PSS idle: {name}, {len(group)} process(es)", sum(f.pss for f in group), "MiB")
        )
    print(f"\nwrote {write_result('footprint', rows)}")


if __name__ == "__main__":
    main()
