"""The metric contract, ``monitoring/METRICS.md``, read from its tables.

Every table row whose first cell is a backticked metric name is one metric: its type, its
label names (the backticked words of the labels cell outside parentheses; the parentheses hold
their values), its status and its help text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shopstack_dashboards import promql
from shopstack_dashboards.paths import METRICS_CONTRACT


class Status(StrEnum):
    EXISTS = "exists"
    PHASE_2 = "phase 2"
    LATER = "later"


# Series every target has besides its own labels: Prometheus adds them at scrape time.
TARGET_LABELS = frozenset({"job", "instance"})
_ROW = re.compile(r"^\|\s*`(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|(?P<rest>.*)\|\s*$")
_BACKTICKED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: frozenset[str]
    status: Status
    help: str

    def series_names(self) -> frozenset[str]:
        """The names this metric is stored under."""
        if self.type == "histogram":
            return frozenset(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return frozenset({self.name})

    def labels_of(self, series: str) -> frozenset[str]:
        """The labels a selector of ``series`` may name."""
        extra = {"le"} if series.endswith("_bucket") and self.type == "histogram" else set()
        return self.labels | TARGET_LABELS | extra


def _top_level_label_names(cell: str) -> frozenset[str]:
    depth, outside = 0, []
    for char in cell:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            outside.append(char)
    return frozenset(_BACKTICKED.findall("".join(outside)))


def parse_contract(text: str) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        cells = [cell.strip() for cell in match["rest"].split("|")]
        kind, labels, status, help_text = cells[0], cells[1], cells[2], "|".join(cells[3:])
        name = match["name"]
        if name in metrics:
            raise ValueError(f"{name} appears twice in the metric contract")
        metrics[name] = Metric(
            name=name,
            type=kind,
            labels=_top_level_label_names(labels),
            status=Status(status),
            help=help_text,
        )
    return metrics


def load_contract(path: Path = METRICS_CONTRACT) -> dict[str, Metric]:
    return parse_contract(path.read_text())


def series_index(contract: dict[str, Metric]) -> dict[str, Metric]:
    """Each stored series name (a histogram's ``_bucket`` too) to its metric."""
    return {series: metric for metric in contract.values() for series in metric.series_names()}


def violations(expr: str, contract: dict[str, Metric], recorded: set[str]) -> list[str]:
    """What ``expr`` reads that the contract does not allow: a metric it does not list, one
    for a later issue, a label the metric does not have, or a recorded series (a name with a
    colon) that no rule in ``recorded`` records."""
    index = series_index(contract)
    problems = []
    for selector in promql.selectors(expr):
        if ":" in selector.name:
            if selector.name not in recorded:
                problems.append(f"{selector.name} is recorded by no rule")
            continue
        metric = index.get(selector.name)
        if metric is None:
            problems.append(f"{selector.name} is not in METRICS.md")
            continue
        if metric.status is Status.LATER:
            problems.append(f"{selector.name} is for a later issue")
        unknown = {m.name for m in selector.matchers} - metric.labels_of(selector.name)
        if unknown:
            problems.append(f"{selector.name} has no label {sorted(unknown)}")
    return problems
