"""The dashboards: their JSON is what the source generates, and every dashboard follows the
rules Grafana's dashboard linter checks (datasource variable, $__rate_interval, units, titles
and descriptions, job matchers), plus this platform's own: queries only on METRICS.md."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shopstack_dashboards import catalog, promql
from shopstack_dashboards.contract import Metric, Status, series_index, violations
from shopstack_dashboards.paths import MONITORING

from .monitoring_files import Panel, load_dashboards, load_rules, query_panels

UIDS = {
    "shopstack-overview",
    "shopstack-service-red",
    "shopstack-gateway",
    "shopstack-datastores",
    "shopstack-business",
}
# Grafana's unit ids (packages/grafana-data/src/valueFormats/categories.ts) that fit what
# these dashboards show.
UNITS = {
    "none",
    "short",
    "percent",
    "percentunit",
    "s",
    "ms",
    "bytes",
    "reqps",
    "ops",
    "opm",
    "rpm",
}
COUNTING = {"rate", "irate", "increase"}
DASHBOARDS = load_dashboards()
PANELS = query_panels()
JOBS = {
    str(job["job_name"])
    for job in yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())[
        "scrape_configs"
    ]
}
RECORDED = {rule.record for rule in load_rules() if rule.record}
VARIABLE = re.compile(r"\$\{?(\w+)")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def variables(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(v["name"]): v for v in model["templating"]["list"]}


def test_committed_json_is_what_the_source_generates() -> None:
    assert not catalog.stale(catalog.rendered()), "run `make dashboards` and commit the result"


def test_the_dashboards_and_their_uids_are_stable() -> None:
    assert {model["uid"] for model in DASHBOARDS.values()} == UIDS
    assert set(DASHBOARDS) == UIDS, "each file is named after its dashboard's uid"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_has_tags_links_and_no_inputs(uid: str) -> None:
    model = DASHBOARDS[uid]
    assert "__inputs" not in model
    assert "__requires" not in model
    assert "shopstack" in model["tags"]
    assert len(model["tags"]) > 1
    assert model["title"].startswith("shopstack / ")
    assert model["description"]
    menu = [link for link in model["links"] if link["type"] == "dashboards"]
    assert menu
    assert menu[0]["tags"] == ["shopstack"]
    assert menu[0]["keepTime"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_datasource_is_the_first_variable(uid: str) -> None:
    first = DASHBOARDS[uid]["templating"]["list"][0]
    assert (first["name"], first["type"], first["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    assert first["label"] == "Data source"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_query_variables_are_label_values_of_contract_metrics(
    uid: str, contract: dict[str, Metric]
) -> None:
    index = series_index(contract)
    for name, variable in variables(DASHBOARDS[uid]).items():
        if variable["type"] != "query":
            continue
        assert variable["datasource"]["uid"] == "${datasource}", name
        assert variable["refresh"] == 2, f"{name}: refresh when the time range changes"
        assert variable["multi"], name
        assert variable["includeAll"], name
        assert variable["allValue"] == ".+", name
        match = LABEL_VALUES.match(variable["query"])
        assert match, variable["query"]
        (selector,) = promql.selectors(match["selector"])
        metric = index[selector.name]
        assert metric.status is not Status.LATER
        assert match["label"] in metric.labels_of(selector.name), variable["query"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_variable_is_used_and_every_used_variable_exists(uid: str) -> None:
    model = DASHBOARDS[uid]
    defined = set(variables(model))
    texts = [expr for panel in PANELS if panel.dashboard == uid for expr in panel.exprs]
    texts += [str(v.get("query", "")) for v in model["templating"]["list"]]
    used = {name for text in texts for name in VARIABLE.findall(text)} - {"__rate_interval"}
    assert used <= defined, f"undefined: {used - defined}"
    assert defined - {"datasource"} <= used, f"unused: {defined - used - {'datasource'}}"


@pytest.mark.parametrize("panel", PANELS, ids=str)
def test_panel_has_title_description_unit_and_the_datasource_variable(panel: Panel) -> None:
    body = panel.body
    assert body["title"].strip()
    assert body.get("description", "").strip()
    assert body["fieldConfig"]["defaults"].get("unit") in UNITS, body["fieldConfig"]["defaults"]
    assert body["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert body["targets"], "a panel without queries"
    for target in body["targets"]:
        assert target.get("datasource", body["datasource"]) == body["datasource"]


@pytest.mark.parametrize("panel", PANELS, ids=str)
def test_panel_ranges_are_the_rate_interval(panel: Panel) -> None:
    """Every range is $__rate_interval, and a panel without one reads only recorded series
    (the SLO windows, which the rules define)."""
    selectors = [s for expr in panel.exprs for s in promql.selectors(expr)]
    for selector in selectors:
        if selector.range_seconds is not None:
            assert promql.is_rate_interval(selector.range_seconds), (panel, selector)
    if not any(s.range_seconds is not None for s in selectors):
        assert all(":" in s.name for s in selectors), f"{panel}: no $__rate_interval"


@pytest.mark.parametrize("panel", PANELS, ids=str)
def test_panel_counters_are_counted_and_histograms_rated(
    panel: Panel, contract: dict[str, Metric]
) -> None:
    index = series_index(contract)
    for expr in panel.exprs:
        for selector in promql.selectors(expr):
            metric = index.get(selector.name)
            if metric is None:
                continue
            counted = bool(set(selector.functions[:1]) & COUNTING)
            if metric.type in {"counter", "histogram"}:
                assert counted, f"{panel}: {selector.name} outside rate()"


@pytest.mark.parametrize("panel", PANELS, ids=str)
def test_panel_selectors_have_job_matchers(panel: Panel) -> None:
    has_job_variable = "job" in variables(DASHBOARDS[panel.dashboard])
    for expr in panel.exprs:
        for selector in promql.selectors(expr):
            job = selector.matcher("job")
            assert job is not None, f"{panel}: {selector.name} has no job matcher"
            if job.op == "=~":
                assert has_job_variable, f"{panel}: $job without a job variable"
                assert job.value == "$job", (panel, job)
            else:
                assert job.op == "=", (panel, job)
                assert job.value in JOBS, (panel, job)


@pytest.mark.parametrize("panel", PANELS, ids=str)
def test_panel_reads_only_contract_metrics_and_labels(
    panel: Panel, contract: dict[str, Metric]
) -> None:
    problems = [problem for expr in panel.exprs for problem in violations(expr, contract, RECORDED)]
    assert not problems, f"{panel}: {problems}"
