"""The monitoring files as data, for the checks: rules, promtool test files, dashboards."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shopstack_dashboards.paths import GENERATED, MONITORING

RULE_DIRS = ("rules", "alerts")
RUNBOOKS = MONITORING / "runbooks"


@dataclass(frozen=True)
class Rule:
    """One recording or alerting rule, with the file and group it is in."""

    path: Path
    group: str
    body: dict[str, Any]

    @property
    def alert(self) -> str | None:
        name = self.body.get("alert")
        return None if name is None else str(name)

    @property
    def record(self) -> str | None:
        name = self.body.get("record")
        return None if name is None else str(name)

    @property
    def name(self) -> str:
        return self.alert or self.record or ""

    @property
    def expr(self) -> str:
        return str(self.body["expr"])

    @property
    def labels(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.body.get("labels", {}).items()}

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.body.get("annotations", {}).items()}

    def __str__(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.path.name}:{self.name}{{{labels}}}"


@dataclass(frozen=True)
class Panel:
    dashboard: str
    body: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))

    @property
    def exprs(self) -> list[str]:
        return [str(target["expr"]) for target in self.body.get("targets", [])]

    def __str__(self) -> str:
        return f"{self.dashboard}:{self.title}"


def rule_files() -> list[Path]:
    return sorted(path for folder in RULE_DIRS for path in (MONITORING / folder).glob("*.yaml"))


@functools.cache
def load_rules() -> list[Rule]:
    rules = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [Rule(path, str(group["name"]), body) for body in group["rules"]]
    return rules


def alert_rules() -> list[Rule]:
    return [rule for rule in load_rules() if rule.alert]


def recording_rules() -> list[Rule]:
    return [rule for rule in load_rules() if rule.record]


def promtool_test_files() -> list[Path]:
    return sorted((MONITORING / "tests").glob("*_test.yaml"))


@functools.cache
def load_promtool_tests() -> dict[Path, dict[str, Any]]:
    return {path: yaml.safe_load(path.read_text()) for path in promtool_test_files()}


@functools.cache
def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(GENERATED.glob("*.json"))}


def panels() -> list[Panel]:
    """Every panel of every dashboard, rows included."""
    found = []
    for uid, model in load_dashboards().items():
        for body in _walk_panels(model["panels"]):
            found.append(Panel(uid, body))
    return found


def _walk_panels(bodies: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for body in bodies:
        yield body
        yield from _walk_panels(body.get("panels", []))


def query_panels() -> list[Panel]:
    return [panel for panel in panels() if panel.body["type"] != "row"]
