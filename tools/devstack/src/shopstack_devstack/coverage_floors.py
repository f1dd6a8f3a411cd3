"""Line and branch coverage per package after `make test`, held to the floors in pyproject.toml.

`make test` measures every package named in ``[tool.coverage.run] source_pkgs``, in the test
process and in every process it starts. This prints one line per package and fails when a
figure is below its floor in ``[tool.shopstack.coverage]``. A floor is a measured figure
rounded down, and only ever raised (``suggest`` prints today's).

    python -m shopstack_devstack.coverage_floors check | suggest | html
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shopstack_devstack.paths import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"


@dataclass(frozen=True)
class Figures:
    """What the tests reached of one package."""

    lines: int = 0
    lines_covered: int = 0
    branches: int = 0
    branches_covered: int = 0

    @property
    def line(self) -> float:
        return 100.0 * self.lines_covered / self.lines if self.lines else 100.0

    @property
    def branch(self) -> float:
        return 100.0 * self.branches_covered / self.branches if self.branches else 100.0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.lines + other.lines,
            self.lines_covered + other.lines_covered,
            self.branches + other.branches,
            self.branches_covered + other.branches_covered,
        )


@dataclass(frozen=True)
class Floor:
    line: int
    branch: int


def read_config(pyproject: Path) -> tuple[list[str], dict[str, Floor]]:
    """The measured packages and their floors."""
    config = tomllib.loads(pyproject.read_text())
    packages = list(config["tool"]["coverage"]["run"]["source_pkgs"])
    floors_table = config["tool"].get("shopstack", {}).get("coverage", {})
    floors = {name: Floor(int(v["line"]), int(v["branch"])) for name, v in floors_table.items()}
    return packages, floors


def _coverage(pyproject: Path):  # type: ignore[no-untyped-def]
    # coverage is a development dependency; the devstack itself runs without it.
    import coverage

    return coverage.Coverage(config_file=str(pyproject))


def combine(pyproject: Path) -> None:
    """Merge what each process wrote (parallel data files) into the one data file."""
    cov = _coverage(pyproject)
    data_file = Path(cov.config.data_file)
    if any(data_file.parent.glob(data_file.name + ".*")):
        cov.combine()
        cov.save()


def measure(pyproject: Path) -> dict[str, Figures]:
    """Figures per package from the combined data file."""
    packages, _ = read_config(pyproject)
    combine(pyproject)
    cov = _coverage(pyproject)
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(report), ignore_errors=True)
        files = json.loads(report.read_text())["files"]
    figures = dict.fromkeys(packages, Figures())
    for filename, entry in files.items():
        package = package_of(Path(filename), packages)
        if package is None:
            continue
        summary = entry["summary"]
        figures[package] += Figures(
            summary["num_statements"],
            summary["covered_lines"],
            summary.get("num_branches", 0),
            summary.get("covered_branches", 0),
        )
    return figures


def package_of(path: Path, packages: Sequence[str]) -> str | None:
    """The measured package a source file belongs to (its import name is in the path)."""
    for part in reversed(path.parts[:-1]):
        if part in packages:
            return part
    return None


def check(figures: Mapping[str, Figures], floors: Mapping[str, Floor]) -> list[str]:
    """Every figure below its floor, and every package that has no floor or no data."""
    failures = []
    for package, measured in figures.items():
        floor = floors.get(package)
        if floor is None:
            failures.append(f"{package}: no floor in [tool.shopstack.coverage]")
            continue
        if measured.lines == 0:
            failures.append(f"{package}: nothing measured (did its tests run?)")
            continue
        for kind, value, least in (
            ("line", measured.line, floor.line),
            ("branch", measured.branch, floor.branch),
        ):
            if value < least:
                failures.append(
                    f"{package}: {kind} coverage {value:.1f}% is below its floor {least}%"
                )
    return failures


def table(figures: Mapping[str, Figures], floors: Mapping[str, Floor]) -> str:
    rows = [f"{'package':<20} {'lines':>13} {'line':>7} {'branches':>13} {'branch':>7}  floors"]
    for package, m in figures.items():
        floor = floors.get(package)
        held = f"{floor.line}% / {floor.branch}%" if floor else "none"
        rows.append(
            f"{package:<20} {m.lines_covered:>6}/{m.lines:<6} {m.line:>6.1f}% "
            f"{m.branches_covered:>6}/{m.branches:<6} {m.branch:>6.1f}%  {held}"
        )
    total = sum(figures.values(), Figures())
    rows.append(
        f"{'total':<20} {total.lines_covered:>6}/{total.lines:<6} {total.line:>6.1f}% "
        f"{total.branches_covered:>6}/{total.branches:<6} {total.branch:>6.1f}%"
    )
    return "\n".join(rows)


def suggest(figures: Mapping[str, Figures], floors: Mapping[str, Floor]) -> str:
    """Today's figures rounded down, never below a floor already held."""
    lines = ["[tool.shopstack.coverage]"]
    for package, m in figures.items():
        old = floors.get(package, Floor(0, 0))
        line = max(math.floor(m.line), old.line)
        branch = max(math.floor(m.branch), old.branch)
        lines.append(f"{package} = {{ line = {line}, branch = {branch} }}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shopstack_devstack.coverage_floors")
    parser.add_argument("command", choices=["check", "suggest", "html"])
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    args = parser.parse_args(argv)
    _, floors = read_config(args.pyproject)
    if args.command == "html":
        combine(args.pyproject)
        cov = _coverage(args.pyproject)
        cov.load()
        cov.html_report(ignore_errors=True)
        print(f"coverage report: {cov.config.html_dir}/index.html")
        return 0
    figures = measure(args.pyproject)
    if args.command == "suggest":
        print(suggest(figures, floors))
        return 0
    print(table(figures, floors))
    failures = check(figures, floors)
    for failure in failures:
        print(f"coverage floor: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
