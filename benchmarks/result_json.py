"""The result file every benchmark writes at its end, which `make bench` prints as one table:
``test-results/bench/<name>.json`` holding ``{"benchmark": name, "rows": [...]}``, each row
with ``figure``, ``value``, ``unit``, ``baseline_name``, ``baseline``, ``ratio``, ``target``
and ``met`` (the last four may be null)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

from shopstack_devstack.paths import REPO_ROOT


class Row(TypedDict):
    figure: str
    value: float
    unit: str
    baseline_name: str | None
    baseline: float | None
    ratio: float | None
    target: str | None
    met: bool | None


def row(
    figure: str,
    value: float,
    unit: str,
    *,
    baseline_name: str | None = None,
    baseline: float | None = None,
    target: str | None = None,
    met: bool | None = None,
) -> Row:
    """One row; the ratio is value / baseline when there is a baseline."""
    ratio = round(value / baseline, 3) if baseline else None
    return Row(
        figure=figure, value=round(value, 3), unit=unit, baseline_name=baseline_name,
        baseline=None if baseline is None else round(baseline, 3), ratio=ratio,
        target=target, met=met,
    )  # fmt: skip


def write_result(name: str, rows: list[Row]) -> Path:
    path = REPO_ROOT / "test-results" / "bench" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "rows": rows}, indent=2) + "\n")
    return path
