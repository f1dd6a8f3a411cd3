"""The one format every benchmark's figures take, and the table `make bench` prints.

A benchmark ends with ``write_result(name, rows)``: ``test-results/bench/<name>.json`` holds

    {"benchmark": "<name>", "rows": [{"figure": "...", "value": 123.4, "unit": "req/s",
      "baseline_name": "...", "baseline": 456.7, "ratio": 0.27, "target": ">= 0.6x",
      "met": false}]}

(``baseline``, ``ratio``, ``target`` and ``met`` are null where none applies). ``main()``
reads every such file and prints one markdown table; a target missed is shown, not an error.

    python -m benchmarks.report          # the table of the last run
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "test-results" / "bench"
FIELDS = ("figure", "value", "unit", "baseline_name", "baseline", "ratio", "target", "met")
Row = dict[str, Any]


def row(
    figure: str,
    value: float,
    unit: str,
    *,
    baseline_name: str | None = None,
    baseline: float | None = None,
    ratio: float | None = None,
    target: str | None = None,
    met: bool | None = None,
) -> Row:
    """One figure; the caller decides whether a target was met."""
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def ratio_row(
    figure: str,
    value: float,
    unit: str,
    *,
    baseline_name: str,
    baseline: float,
    at_least: float | None = None,
) -> Row:
    """A figure against its baseline from the same run: ``ratio = value / baseline``, and
    with ``at_least`` the target ``>= <at_least>x``."""
    ratio = value / baseline if baseline else math.nan
    return row(
        figure,
        value,
        unit,
        baseline_name=baseline_name,
        baseline=baseline,
        ratio=round(ratio, 3),
        target=None if at_least is None else f">= {at_least:g}x",
        met=None if at_least is None else ratio >= at_least,
    )


def write_result(
    name: str, rows: Sequence[Mapping[str, Any]], *, directory: Path = RESULTS
) -> Path:
    """Write ``test-results/bench/<name>.json``; a row without the contract's fields is an
    error here, not a gap in the table later."""
    checked = []
    for entry in rows:
        missing = [field for field in FIELDS if field not in entry]
        extra = [field for field in entry if field not in FIELDS]
        if missing or extra:
            raise ValueError(f"{name}: row {entry!r}: missing {missing}, unknown {extra}")
        checked.append({field: entry[field] for field in FIELDS})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "rows": checked}, indent=2) + "\n")
    print(f"figures written to {path}")
    return path


def _number(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        magnitude = abs(value)
        return f"{value:,.0f}" if magnitude >= 100 else f"{value:.3g}"
    return str(value)


def table(results: Sequence[Mapping[str, Any]]) -> str:
    header = ["benchmark", "figure", "value", "baseline", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for result in results:
        for entry in result["rows"]:
            unit = entry["unit"]
            baseline = ""
            if entry["baseline"] is not None:
                baseline = f"{_number(entry['baseline'])} {unit} ({entry['baseline_name']})"
            met = {True: "yes", False: "**no**", None: ""}[entry["met"]]
            cells = [
                result["benchmark"],
                entry["figure"],
                f"{_number(entry['value'])} {unit}",
                baseline,
                "" if entry["ratio"] is None else f"{entry['ratio']:.2f}x",
                entry["target"] or "",
                met,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(directory: Path = RESULTS) -> int:
    """Print the table of every result in ``test-results/bench/``, then the targets missed
    (shown, not a failure: the figures are the product). No results at all is a failure."""
    results = [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]
    if not results:
        print(f"no benchmark results in {directory}", file=sys.stderr)
        return 1
    print(table(results))
    missed = [
        f"{result['benchmark']}: {entry['figure']} ({entry['target']})"
        for result in results
        for entry in result["rows"]
        if entry["met"] is False
    ]
    if missed:
        print("\ntargets missed:\n  " + "\n  ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
