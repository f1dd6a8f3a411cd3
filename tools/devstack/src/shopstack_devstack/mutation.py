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
    python -m shopstack_devstack.mutation changed [SERVICE...] [--base REF]  # make ci: the
        # modules of SERVICEs a change touches since the merge base with origin/main
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shopstack_devstack.paths import REPO_ROOT

SERVICES = ("users", "orders", "gateway")
THRESHOLD = 85.0
EQUIVALENTS = Path("tests") / "equivalent_mutants.toml"
LOGS = REPO_ROOT / "test-results" / "mutation"
# mutmut's exit codes of a mutant that ran past its time: SIGXCPU from the CPU limit or the
# wall-clock one, SIGKILL a second after the CPU limit when SIGXCPU did not stop it. The time
# limits are wide (``timeout_constant`` in ``[tool.mutmut]``) and each test has a pytest-timeout
# of its own, so only a mutant that hangs gets here, never a test slowed by a busy machine.
TIMED_OUT = frozenset({36, 24, -24, 152, 255, -9})
# mutmut's exit codes that mean a test failed on the mutant (a timeout is a kill too: the
# mutant hangs where the original does not).
KILLED = frozenset({1, 3, 37, *TIMED_OUT})
# mutmut joins a class and its method with this character in a mutant's name.
_CLASS_SEPARATOR = "\u01c1"


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str
    change: str
    name: str
    killed: bool
    timed_out: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.module, self.function, self.change)


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    timed_out: int = 0
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
    """Every mutant of the last run in ``service_dir/mutants`` with its outcome. A module none
    of whose mutants ran was left out of the run (``changed`` runs the modules a change
    touches) and is left out here; one with only some checked is a run that did not finish."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    mutants = []
    root = service_dir / "mutants"
    for meta in sorted(root.rglob("*.py.meta")):
        source = meta.with_suffix("")
        exit_codes: Mapping[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if all(code is None for code in exit_codes.values()):
            continue
        for name, code in exit_codes.items():
            mangled, _, _ = name.partition("__mutmut_")
            module = mangled.rpartition(".")[0]
            if code is None:
                raise RuntimeError(f"{name} was not checked: the mutation run did not finish")
            killed = code in KILLED
            change = "" if killed else change_of(get_diff_for_mutant(name, path=source))
            mutants.append(
                Mutant(module, function_of(mangled), change, name, killed, code in TIMED_OUT)
            )
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
        entry.timed_out += mutant.timed_out
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


@dataclass(frozen=True)
class Target:
    """What a service's ``[tool.mutmut]`` mutates and the tests it runs against it."""

    service: str
    files: tuple[str, ...]  # the mutated modules, relative to the repository
    tests: tuple[str, ...]  # the test selection, relative to the repository

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(module_of(path) for path in self.files)


def module_of(path: str) -> str:
    """``services/users/src/shopstack_users/passwords.py`` -> ``shopstack_users.passwords``."""
    return path.partition("/src/")[2].removesuffix(".py").replace("/", ".")


def target(service: str) -> Target:
    base = f"services/{service}"
    config = tomllib.loads((REPO_ROOT / base / "pyproject.toml").read_text())["tool"]["mutmut"]
    return Target(
        service,
        tuple(f"{base}/{path}" for path in config["only_mutate"]),
        tuple(f"{base}/{path}" for path in config["pytest_add_cli_args_test_selection"]),
    )


def check(services: Sequence[str], *, modules: Mapping[str, Sequence[str]] | None = None) -> int:
    """The last run of ``services``; ``modules``: the modules it was asked for, each of which
    must have results."""
    problems: list[str] = []
    for service in services:
        service_dir = REPO_ROOT / "services" / service
        mutants = read_mutants(service_dir)
        if not mutants:
            problems.append(f"{service}: no mutants found; did `mutation run` run?")
            continue
        scores, stale = score(mutants, read_equivalents(service_dir))
        problems.extend(
            f"{module}: no results in the run that was asked for it"
            for module in (modules or {}).get(service, ())
            if module not in scores
        )
        for entry in scores.values():
            print(
                f"{entry.module:<45} {entry.killed:>4}/{entry.total:<4} killed "
                f"({entry.timed_out} by a timeout), {entry.equivalent:>3} equivalent, "
                f"{len(entry.unlisted):>3} unlisted: {entry.score:5.1f}%"
            )
        for module, function, _ in sorted(stale):
            if module not in scores:
                continue  # not part of this run
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


# A run's test processes copy their database from this one, migrated once per run.
TEMPLATE_DATABASE = "shopstack_mutation_template"


def run(selection: Mapping[str, Sequence[str]], *, children: int) -> int:
    """mutmut over each service from scratch, on one embedded PostgreSQL and Redis.
    ``selection``: the modules to mutate per service (empty: all of the service's)."""
    from shopstack_devstack.backends import start_servers
    from shopstack_devstack.pytest_plugin import migrate_template

    with (
        start_servers("embedded") as servers,
        tempfile.TemporaryDirectory(prefix="shopstack-redis-slots-") as slots,
    ):
        migrate_template(servers.postgres_url, TEMPLATE_DATABASE)
        env = {
            **os.environ,
            "SHOPSTACK_TEST_BACKEND": "external",
            "SHOPSTACK_TEST_DATABASE_URL": servers.postgres_url,
            "SHOPSTACK_TEST_REDIS_URL": servers.redis_url,
            "SHOPSTACK_TEST_DATABASE_TEMPLATE": TEMPLATE_DATABASE,
            # Test processes of two mutants run at once: each locks a Redis database of its own.
            "SHOPSTACK_TEST_REDIS_SLOTS": slots,
        }
        for service, modules in selection.items():
            service_dir = REPO_ROOT / "services" / service
            # A fresh copy each run: a previous run's results must not stand for today's code.
            shutil.rmtree(service_dir / "mutants", ignore_errors=True)
            log = LOGS / f"{service}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"mutmut: {service} {' '.join(modules)} (its output: {log})", flush=True)
            patterns = [f"{module}.*" for module in modules]
            with log.open("w") as out:
                done = subprocess.run(  # noqa: S603 - mutmut of this environment
                    [sys.executable, "-m", "mutmut", "run", "--max-children", str(children),
                     *patterns],
                    cwd=service_dir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
            if done.returncode != 0:
                print(f"mutmut failed on {service} (exit {done.returncode}):", file=sys.stderr)
                print(log.read_text()[-3000:], file=sys.stderr)
                return done.returncode
    return check(list(selection), modules=selection)


# Changes to these decide every mutant's verdict: every module is run again.
SHARED = (
    "tools/devstack/src/shopstack_devstack/mutation.py",
    "tools/devstack/src/shopstack_devstack/pytest_plugin.py",
    "uv.lock",
)


def touched(files: Iterable[str], targets: Iterable[Target]) -> dict[str, list[str]]:
    """The modules per service a change to ``files`` can change the verdicts of: a module's
    own file runs that module; its service's test selection, conftest, equivalents or
    pyproject.toml run every module of the service; a file in ``SHARED`` runs them all."""
    changed = set(files)
    selection: dict[str, list[str]] = {}
    for t in targets:
        base = f"services/{t.service}/"
        whole = bool(changed & set(SHARED)) or any(
            path.startswith(t.tests)
            or path in {f"{base}pyproject.toml", f"{base}{EQUIVALENTS}", f"{base}tests/conftest.py"}
            for path in changed
        )
        modules = [module_of(f) for f in t.files if whole or f in changed]
        if modules:
            selection[t.service] = modules
    return selection


def _git(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - git of this checkout
        ["git", *args],  # noqa: S607 - git from PATH, as the Makefile runs it
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def merge_base() -> str:
    """Where this change starts: the merge base with origin/main, or HEAD~1 with no remote."""
    try:
        return _git("merge-base", "HEAD", "origin/main")
    except RuntimeError:
        return _git("rev-parse", "HEAD~1")


def rotating(entries: Sequence[str], commit: str) -> str:
    """What a change that touches no module runs: one entry per commit, in turn by the
    commit's hash, so a clean clone of main still checks part of the held code in full.
    ``entries`` (``--rotation``): ``SERVICE`` or ``SERVICE:MODULE``, each one run that fits
    the 10-minute bound."""
    return entries[int(commit, 16) % len(entries)]


def rotation_selection(entry: str) -> dict[str, list[str]]:
    """``gateway`` -> the gateway in full; ``gateway:shopstack_gateway.keys`` -> that module."""
    service, _, module = entry.partition(":")
    return {service: [module] if module else []}


def rotation_problem(entry: str) -> str | None:
    """Why ``entry`` names nothing that a run could mutate, or None."""
    service, _, module = entry.partition(":")
    if service not in SERVICES:
        return f"no such service: {service}"
    modules = target(service).modules
    if module and module not in modules:
        return f"{service} does not mutate {module} (its modules: {', '.join(modules)})"
    return None


def changed(
    services: Sequence[str], base: str | None, *, rotation: Sequence[str], children: int
) -> int:
    """The modules of ``services`` a change touches since ``base``; none touched: one entry
    of ``rotation``, by ``rotating``."""
    base = base or merge_base()
    # Against the working tree: committed and uncommitted changes alike.
    files = _git("diff", "--name-only", base).splitlines()
    selection = touched(files, [target(service) for service in services])
    if not selection:
        chosen = rotating(rotation, _git("rev-parse", "HEAD"))
        print(f"mutation: no module touched since {base[:12]}: {chosen} in turn")
        selection = rotation_selection(chosen)
    else:
        print(f"mutation: since {base[:12]} the change touches:")
        for service, modules in selection.items():
            print(f"  {service}: {', '.join(modules)}")
        whole = {t.service: list(t.modules) for t in map(target, selection)}
        # A whole service runs as one mutmut run with no patterns.
        selection = {s: ([] if m == whole[s] else m) for s, m in selection.items()}
    return run(selection, children=children)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shopstack_devstack.mutation")
    parser.add_argument("command", choices=["run", "check", "changed"])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICES))
    parser.add_argument("--children", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--base", help="changed: the commit to diff against (default: merge base)")
    parser.add_argument(
        "--rotation",
        nargs="+",
        default=[],
        metavar="SERVICE[:MODULE]",
        help="changed: what runs in turn when no module is touched, a service in full or one "
        "of its modules (default: SERVICEs)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        parser.error(f"no such service: {', '.join(sorted(unknown))}")
    for entry in args.rotation:
        if problem := rotation_problem(entry):
            parser.error(f"--rotation {entry}: {problem}")
    services = list(dict.fromkeys(args.services)) or list(SERVICES)
    if args.command == "run":
        return run({service: [] for service in services}, children=args.children)
    if args.command == "changed":
        rotation = args.rotation or services
        return changed(services, args.base, rotation=rotation, children=args.children)
    return check(services)


if __name__ == "__main__":
    sys.exit(main())
