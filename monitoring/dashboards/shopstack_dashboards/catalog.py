"""Every dashboard, its JSON as committed in ``monitoring/dashboards/generated/``, and its
description in ``monitoring/README.md`` (rows, panels, queries), written from the same models
so the two never disagree; and the chart's copies of the dashboards, rules and alerts
(``deploy/helm/shopstack/files/monitoring/``), byte for byte the files of ``monitoring/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from shopstack_dashboards import business, datastores, gateway, overview, promql, service_red
from shopstack_dashboards.contract import Status, load_contract, series_index
from shopstack_dashboards.paths import CHART_COPIES, GENERATED, MONITORING, REPO, RULE_FOLDERS

BUILDERS: tuple[Callable[[], dashboard.Dashboard], ...] = (
    overview.build,
    service_red.build,
    gateway.build,
    datastores.build,
    business.build,
)
README = MONITORING / "README.md"
BEGIN = "<!-- dashboards: written by `make dashboards` from dashboards/shopstack_dashboards -->"
END = "<!-- end of dashboards -->"


def render(builder: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model. Panel ids are numbered in order, so they stay the same from
    one generation to the next (links to a panel use them)."""
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    return model


def _code(text: str) -> str:
    """A code span that survives a Markdown table cell."""
    return "`" + " ".join(text.split()).replace("|", "\\|") + "`"


def _needs(exprs: list[str], index: dict[str, Any]) -> str:
    """Whether every metric a panel reads exists today, or which step adds them."""
    pending = {
        index[selector.name].status
        for expr in exprs
        for selector in promql.selectors(expr)
        if selector.name in index and index[selector.name].status is not Status.EXISTS
    }
    return ", ".join(sorted(pending)) if pending else "exist"


def describe(models: list[dict[str, Any]]) -> str:
    index = series_index(load_contract())
    lines: list[str] = []
    for model in models:
        lines += [f"### {model['title']} (`{model['uid']}`)", "", model["description"], ""]
        variables = [
            f"`{v['name']}` ({v['label']}: {_code(str(v['query']))})"
            for v in model["templating"]["list"]
        ]
        lines += [f"Tags: {', '.join(model['tags'])}. Variables: {'; '.join(variables)}.", ""]
        for panel in model["panels"]:
            if panel["type"] == "row":
                if lines[-1]:
                    lines.append("")
                lines += [
                    f"**{panel['title']}**",
                    "",
                    "| panel | type, unit | metrics | queries |",
                    "| --- | --- | --- | --- |",
                ]
                continue
            exprs = [str(target["expr"]) for target in panel["targets"]]
            queries = "<br>".join(_code(expr) for expr in exprs)
            unit = panel["fieldConfig"]["defaults"]["unit"]
            needs = _needs(exprs, index)
            lines.append(f"| {panel['title']} | {panel['type']}, {unit} | {needs} | {queries} |")
        lines.append("")
    return "\n".join(lines)


def _readme_with(section: str) -> str:
    text = README.read_text()
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise RuntimeError(f"{README} lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{section}\n{END}{tail}"


def rendered() -> dict[Path, str]:
    models = [render(build()) for build in BUILDERS]
    files = {
        GENERATED / f"{model['uid']}.json": json.dumps(model, indent=2, sort_keys=True) + "\n"
        for model in models
    }
    files[README] = _readme_with(describe(models))
    for path, text in list(files.items()):
        if path.parent == GENERATED:
            files[CHART_COPIES / "dashboards" / path.name] = text
    for folder in RULE_FOLDERS:
        for path in sorted((MONITORING / folder).glob("*.yaml")):
            files[CHART_COPIES / folder / path.name] = path.read_text()
    return files


def _generated_dirs() -> list[Path]:
    return [GENERATED, *(CHART_COPIES / part for part in ("dashboards", *RULE_FOLDERS))]


def stale(files: dict[Path, str]) -> list[str]:
    """What differs between ``files`` and what is on disk: changed, missing, extra."""
    problems = [
        f"{path.relative_to(REPO)}: {'differs from its source' if path.exists() else 'missing'}"
        for path, text in files.items()
        if not path.exists() or path.read_text() != text
    ]
    problems += [
        f"{path.relative_to(REPO)}: nothing in monitoring/ generates it"
        for folder in _generated_dirs()
        for path in sorted(folder.glob("*"))
        if path not in files
    ]
    return problems


def write(files: dict[Path, str]) -> None:
    for folder in _generated_dirs():
        folder.mkdir(parents=True, exist_ok=True)
        for path in folder.glob("*"):
            if path not in files:
                path.unlink()
    for path, text in files.items():
        path.write_text(text)
