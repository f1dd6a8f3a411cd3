"""``shopstack-rehearse``: run what a chart renders as containers, or say what it cannot."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from shopstack_rehearse.coverage import Finding, markdown_table, survey
from shopstack_rehearse.engine import ImageMap, RehearsalError, abandoned_runs, clean_up, connect
from shopstack_rehearse.manifests import ManifestError, Manifests, parse_stream
from shopstack_rehearse.pods import KubeletSettings
from shopstack_rehearse.rehearsal import Options, Rehearsal

log = logging.getLogger("shopstack_rehearse")


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise RehearsalError(f"{what} {value!r}: expected KEY=VALUE")
        pairs[key] = rest
    return pairs


def _namespace_labels(values: Sequence[str]) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    for value in values:
        namespace, sep, pair = value.partition(":")
        if not sep:
            raise RehearsalError(f"--namespace-label {value!r}: expected NAMESPACE:KEY=VALUE")
        labels.setdefault(namespace, {}).update(_pairs([pair], "--namespace-label"))
    return labels


def render(args: argparse.Namespace) -> str:
    """The YAML stream: ``helm template`` of the chart and values, or a rendered file."""
    if args.manifests:
        return sys.stdin.read() if args.manifests == "-" else Path(args.manifests).read_text()
    helm = args.helm or shutil.which("helm")
    if not helm or not Path(helm).exists():
        raise RehearsalError(
            "helm is needed to render the chart (give --helm, or `make rehearse` installs it)"
        )
    command = [helm, "template", args.release, args.chart, "--namespace", args.namespace]
    for values in args.values:
        command += ["-f", values]
    for pair in args.set:
        command += ["--set", pair]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RehearsalError(f"helm template failed:\n{result.stderr.strip()}")
    return result.stdout


def load(args: argparse.Namespace) -> tuple[Manifests, Manifests]:
    try:
        manifests = parse_stream(render(args), args.namespace)
        existing = Manifests()
        for path in getattr(args, "existing", []):
            existing.objects += parse_stream(Path(path).read_text(), args.namespace).objects
    except ManifestError as error:
        raise RehearsalError(str(error)) from error
    return manifests, existing


def print_findings(findings: list[Finding]) -> None:
    fatal = [f for f in findings if f.fatal]
    accepted = [f for f in findings if not f.fatal]
    print(f"not modelled: {len(fatal)} fatal, {len(accepted)} accepted")
    for finding in fatal:
        print(f"  FATAL {finding}")
    for finding in accepted:
        print(f"  accepted {finding}")


def options(args: argparse.Namespace) -> Options:
    return Options(
        namespace=args.namespace,
        max_replicas=args.max_replicas,
        images=ImageMap.parse(args.image),
        ingress_class=args.ingress_class,
        ingress_namespace=args.ingress_namespace,
        ingress_labels=_pairs(args.ingress_label, "--ingress-label") or Options().ingress_labels,
        namespace_labels=_namespace_labels(args.namespace_label),
        timeout=args.timeout,
        wait=not args.no_wait,
        max_restarts=args.max_restarts,
        allow_unmodelled=tuple(args.allow_unmodelled),
        publish_port=args.port,
        kubelet=KubeletSettings(backoff_seconds=args.backoff),
        job_backoff_seconds=args.backoff,
    )


def run(args: argparse.Namespace) -> int:
    manifests, existing = load(args)
    findings = survey(manifests, args.allow_unmodelled)
    print_findings(findings)
    if any(f.fatal for f in findings):
        print(
            "rehearsal refused: the render uses what the rehearsal does not model", file=sys.stderr
        )
        return 1
    started = time.monotonic()
    with Rehearsal(options(args)) as rehearsal:
        print(f"the ingress controller's network is {rehearsal.ingress_cidr}")
        rehearsal.install(manifests, existing)
        installed = time.monotonic() - started
        tests = rehearsal.test(manifests) if not args.skip_tests else []
        print(f"installed in {installed:.1f}s; every workload is ready")
        for hook in rehearsal.hook_runs:
            print(f"  {hook.phase:12} {hook.ref}: {hook.outcome} ({hook.seconds:.1f}s)")
        for pod in rehearsal.pods():
            state = f"ready={pod.ready} restarts={pod.restarts}"
            print(f"  pod {pod.namespace}/{pod.name} {pod.ip} {state}")
        for note in rehearsal.notes:
            print(f"  note: {note}")
        if rehearsal.nginx is not None:
            where = f"in-cluster {rehearsal.nginx.ip}, in {rehearsal.ingress_cidr}"
            print(f"NGINX: {rehearsal.url} ({where})")
        print(f"helm test: {len(tests)} hook(s) passed")
        if args.keep:
            print("running until Ctrl-C")
            signal.pause()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopstack-rehearse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, summary in (
        ("run", "run the render as containers"),
        ("survey", "list what the rehearsal does not model"),
    ):
        command = commands.add_parser(name, help=summary)
        source = command.add_mutually_exclusive_group(required=True)
        source.add_argument("--chart", help="chart directory to render with helm template")
        source.add_argument("--manifests", help="a rendered YAML stream ('-' reads stdin)")
        command.add_argument(
            "--values", "-f", action="append", default=[], help="values file (repeatable)"
        )
        command.add_argument(
            "--set", action="append", default=[], help="helm --set pair (repeatable)"
        )
        command.add_argument("--helm", help="the helm binary")
        command.add_argument("--release", default="shopstack")
        command.add_argument("--namespace", "-n", default="shopstack")
        command.add_argument(
            "--allow-unmodelled",
            action="append",
            default=[],
            metavar="NAME",
            help="downgrade a fatal finding (a kind, or a field path) to accepted",
        )
        if name == "survey":
            continue
        command.add_argument(
            "--existing",
            action="append",
            default=[],
            metavar="FILE",
            help="objects that exist before the install, e.g. Secrets a production release names",
        )
        command.add_argument(
            "--image",
            action="append",
            default=[],
            metavar="FROM=TO",
            help="use a local image for a rendered one (PREFIX*=TO* maps a prefix)",
        )
        command.add_argument(
            "--max-replicas", type=int, default=2, help="run at most this many pods per workload"
        )
        command.add_argument(
            "--timeout", type=float, default=300, help="seconds to wait for the workloads"
        )
        command.add_argument(
            "--no-wait", action="store_true", help="post-install hooks do not wait for workloads"
        )
        command.add_argument("--ingress-class", default="nginx")
        command.add_argument("--ingress-namespace", default="ingress-nginx")
        command.add_argument("--ingress-label", action="append", default=[], metavar="KEY=VALUE")
        command.add_argument(
            "--namespace-label", action="append", default=[], metavar="NS:KEY=VALUE"
        )
        command.add_argument(
            "--port", type=int, default=0, help="host port of the NGINX (0: a free one)"
        )
        command.add_argument(
            "--backoff", type=float, default=10, help="restart and retry back-off base, seconds"
        )
        command.add_argument(
            "--max-restarts",
            type=int,
            default=5,
            help="fail once a container restarts this often without being ready",
        )
        command.add_argument(
            "--skip-tests", action="store_true", help="do not run the helm test hooks"
        )
        command.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")
    commands.add_parser("fields", help="print every field the rehearsal models or refuses")
    commands.add_parser("clean", help="remove what runs whose process was killed left behind")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="rehearse: %(message)s")

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        if args.command == "fields":
            print(markdown_table(), end="")
            return 0
        if args.command == "clean":
            client = connect()
            for run_id in sorted(abandoned_runs(client)):
                problems = clean_up(client, run_id)
                print(f"run {run_id}: removed" + "".join(f"\n  {p}" for p in problems))
            return 0
        if args.command == "survey":
            manifests, _ = load(args)
            findings = survey(manifests, args.allow_unmodelled)
            print_findings(findings)
            return 1 if any(f.fatal for f in findings) else 0
        return run(args)
    except RehearsalError as error:
        print(f"rehearsal failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything the rehearsal made is removed", file=sys.stderr)
        return 130
