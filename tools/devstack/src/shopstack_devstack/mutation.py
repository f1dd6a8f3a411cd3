"""Mutation testing of the modules where a silent bug costs money or access (`make mutation`).

mutmut mutates the modules a service names in its pyproject.toml (``[tool.mutmut]``) and runs
their tests against each mutant. It runs from the service's directory: mutmut finds the code
under ``src/`` there, which is this workspace's layout. One embedded PostgreSQL and Redis
serve every mutant's tests (the external backend), so a mutant costs its tests, not a server.

A module passes when at least ``THRESHOLD`` of its mutants are killed, leaving out the ones
listed as equivalent (no test can tell them from the original), and every survivor is listed.
The list is ``tests/equivalent_mutants.toml`` of the service. An entry names the module, the
function and the change, not mutmut's number, which shifts whenever the function changes::

    [[equivalent]]
    module = "shopstack_gateway.ratelimit"
    function = "RateLimiter.check"
    change = "- if self._skip_until and ...\\n+ if self._skip_until or ..."
    why = "..."

    python -m shopstack_devstack.mutation run [SERVICE...]   # mutmut, then the check
    python -m shopstack_devstack.mutation check [SERVICE...] # the check of the last run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shopstack_devstack.paths import REPO_ROOT

SERVICES = ("users", "orders", "gateway")
THRESHOLD = 85.0
EQUIVALENTS = Path("tests") / "equivalent_mutants.toml"
LOGS = REPO_ROOT / "test-results" / "mutation"
# mutmut's exit codes that mean a test failed on the mutant (a timeout is a kill too: the
# mutant hangs where the original does not).
KILLED = frozenset({1, 3, 36, 24, -24, 152, 255, 37})
# mutmut joins a class and its method with this character in a mutant's name.
_CLASS_SEPARATOR = "\u01c1"


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str
    change: str
    name: str
    killed: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.module, self.function, self.change)


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    unlisted: list[Mutant] = field(default_factory=list)

    @property
    def score(self) -> float:
        judged = self.total - self.equivalent
        return 100.0 * self.killed / judged if judged else 100.0


def function_of(mangled: str) -> str:
    """``x\u01c1RateLimiter\u01c1check`` -> ``RateLimiter.check``; ``x_fingerprint`` ->
    ``fingerprint``."""
    name = mangled.rpartition(".")[2]
    if _CLASS_SEPARATOR in name:
        _, cls, method = name.split(_CLASS_SEPARATOR)
        return f"{cls}.{method}"
    return name.removeprefix("x_")


def change_of(diff: str) -> str:
    """The lines a mutant changes, without the diff's header or context: what stays the same
    while code around it moves."""
    lines = [
        line[0] + " " + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "\n".join(lines)


def read_mutants(service_dir: Path) -> list[Mutant]:
    """Every mutant of the last run in ``service_dir/mutants`` with its outcome."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    mutants = []
    root = service_dir / "mutants"
    for meta in sorted(root.rglob("*.py.meta")):
        source = meta.with_suffix("")
        exit_codes: Mapping[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in exit_codes.items():
            mangled, _, _ = name.partition("__mutmut_")
            module = mangled.rpartition(".")[0]
            if code is None:
                raise RuntimeError(f"{name} was not checked: the mutation run did not finish")
            killed = code in KILLED
            change = "" if killed else change_of(get_diff_for_mutant(name, path=source))
            mutants.append(Mutant(module, function_of(mangled), change, name, killed))
    return mutants


def read_equivalents(service_dir: Path) -> set[tuple[str, str, str]]:
    path = service_dir / EQUIVALENTS
    if not path.exists():
        return set()
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    return {(e["module"], e["function"], e["change"].strip()) for e in entries}


def score(
    mutants: Iterable[Mutant], equivalents: set[tuple[str, str, str]]
) -> tuple[dict[str, ModuleScore], set[tuple[str, str, str]]]:
    """Scores per module, and the listed equivalents no survivor matches any more."""
    scores: dict[str, ModuleScore] = {}
    matched = set()
    for mutant in mutants:
        entry = scores.setdefault(mutant.module, ModuleScore(mutant.module))
        entry.total += 1
        if mutant.killed:
            entry.killed += 1
        elif mutant.key in equivalents:
            entry.equivalent += 1
            matched.add(mutant.key)
        else:
            entry.unlisted.append(mutant)
    return scores, equivalents - matched


def failures(scores: Mapping[str, ModuleScore]) -> list[str]:
    found = []
    for module in scores.values():
        if module.score < THRESHOLD:
            found.append(
                f"{module.module}: {module.score:.1f}% of mutants killed, below {THRESHOLD:.0f}%"
            )
        for mutant in module.unlisted:
            found.append(
                f"{module.module}: {mutant.function} survives ({mutant.name}), "
                "not listed as equivalent:\n"
                + "\n".join("    " + line for line in mutant.change.splitlines())
            )
    return found


def survivors_toml(mutants: Iterable[Mutant]) -> str:
    """The survivors as entries for the equivalents file, to fill in ``why``."""
    blocks = []
    for m in mutants:
        change = m.change.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        blocks.append(
            f'[[equivalent]]\nmodule = "{m.module}"\nfunction = "{m.function}"\n'
            f'change = "{change}"\nwhy = ""\n'
        )
    return "\n".join(blocks)


def check(services: Sequence[str]) -> int:
    problems: list[str] = []
    for service in services:
        service_dir = REPO_ROOT / "services" / service
        mutants = read_mutants(service_dir)
        if not mutants:
            problems.append(f"{service}: no mutants found; did `mutation run` run?")
            continue
        scores, stale = score(mutants, read_equivalents(service_dir))
        for entry in scores.values():
            print(
                f"{entry.module:<45} {entry.killed:>4}/{entry.total:<4} killed, "
                f"{entry.equivalent:>3} equivalent, {len(entry.unlisted):>3} unlisted: "
                f"{entry.score:5.1f}%"
            )
        for module, function, _ in sorted(stale):
            # Not a failure: another change may have removed the mutant; the list wants pruning.
            print(
                f"note: {service_dir / EQUIVALENTS} lists a mutant of {module} {function} "
                "that no longer survives"
            )
        unlisted = [m for entry in scores.values() for m in entry.unlisted]
        if unlisted:
            report = service_dir / "mutants" / "survivors.toml"
            report.write_text(survivors_toml(unlisted))
            print(f"the unlisted survivors, as entries for {EQUIVALENTS}: {report}")
        problems.extend(failures(scores))
    for problem in problems:
        print(f"mutation: {problem}", file=sys.stderr)
    return 1 if problems else 0


def run(services: Sequence[str], *, children: int) -> int:
    """mutmut over each service from scratch, on one embedded PostgreSQL and Redis."""
    from shopstack_devstack.backends import start_servers

    with start_servers("embedded") as servers:
        env = {
            **os.environ,
            "SHOPSTACK_TEST_BACKEND": "external",
            "SHOPSTACK_TEST_DATABASE_URL": servers.postgres_url,
            "SHOPSTACK_TEST_REDIS_URL": servers.redis_url,
        }
        for service in services:
            service_dir = REPO_ROOT / "services" / service
            # A fresh copy each run: a previous run's results must not stand for today's code.
            shutil.rmtree(service_dir / "mutants", ignore_errors=True)
            log = LOGS / f"{service}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"mutmut: {service} (its output: {log})", flush=True)
            with log.open("w") as out:
                done = subprocess.run(  # noqa: S603 - mutmut of this environment
                    [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                    cwd=service_dir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
            if done.returncode != 0:
                print(f"mutmut failed on {service} (exit {done.returncode}):", file=sys.stderr)
                print(log.read_text()[-3000:], file=sys.stderr)
                return done.returncode
    return check(services)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shopstack_devstack.mutation")
    parser.add_argument("command", choices=["run", "check"])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICES))
    parser.add_argument("--children", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        parser.error(f"no such service: {', '.join(sorted(unknown))}")
    services = list(dict.fromkeys(args.services)) or list(SERVICES)
    if args.command == "run":
        return run(services, children=args.children)
    return check(services)


if __name__ == "__main__":
    sys.exit(main())
