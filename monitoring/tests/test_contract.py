"""The metric contract (METRICS.md) against the code that exports the metrics, and against the
rules and alerts that read them."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import pytest
from prometheus_client.metrics import MetricWrapperBase

from shopstack_dashboards import promql
from shopstack_dashboards.contract import Metric, Status, violations

from .monitoring_files import Rule, load_promtool_tests, load_rules, recording_rules

# Where the services' own metrics are declared.
METRIC_MODULES = (
    "shopstack_common.metrics",
    "shopstack_gateway.metrics",
    "shopstack_users.metrics",
    "shopstack_orders.metrics",
)
LEVEL_METRIC_OPERATIONS = re.compile(
    r"^(?P<level>[a-z]+(_[a-z]+)*):[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$"
)
RULES = load_rules()
RECORDED = {rule.record for rule in RULES if rule.record}


def _exported(module: ModuleType) -> list[MetricWrapperBase]:
    return [value for value in vars(module).values() if isinstance(value, MetricWrapperBase)]


def exported_metrics() -> dict[str, tuple[str, frozenset[str], str]]:
    """Name as stored -> (type, label names, help) of every metric the code declares.
    prometheus-client keeps a counter's name without ``_total`` and its labels on private
    attributes; its public ``describe()`` gives neither labels nor the stored name."""
    found: dict[str, tuple[str, frozenset[str], str]] = {}
    for name in METRIC_MODULES:
        for metric in _exported(importlib.import_module(name)):
            kind = str(metric._type)
            stored = f"{metric._name}_total" if kind == "counter" else metric._name
            found[stored] = (kind, frozenset(metric._labelnames), metric._documentation)
    return found


def test_contract_rows_are_well_formed(contract: dict[str, Metric]) -> None:
    for metric in contract.values():
        assert metric.type in {"counter", "gauge", "histogram"}, metric
        assert metric.help, metric
        if metric.name.startswith("shopstack_"):
            # The exporters name their counters as they like; ours follow Prometheus's rule.
            assert (metric.type == "counter") == metric.name.endswith("_total"), metric
            assert not metric.labels & {"job", "instance", "le"}, "the scrape sets those"


def test_every_exported_metric_is_in_the_contract_as_it_ships(contract: dict[str, Metric]) -> None:
    exported = exported_metrics()
    assert exported, "no metric found in the services' metrics modules"
    for name, (kind, labels, help_text) in exported.items():
        assert name in contract, f"{name} is exported but not in METRICS.md"
        metric = contract[name]
        assert metric.status is Status.EXISTS, f"{name} is exported: its status is exists"
        assert (metric.type, metric.labels, metric.help) == (kind, labels, help_text), name


def test_every_existing_shopstack_metric_is_exported(contract: dict[str, Metric]) -> None:
    exported = exported_metrics()
    claimed = {
        name
        for name, metric in contract.items()
        if metric.status is Status.EXISTS and name.startswith("shopstack_")
    }
    assert not claimed - exported.keys(), "METRICS.md says these exist, the code has none"


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_rule_reads_only_contract_metrics_and_labels(
    rule: Rule, contract: dict[str, Metric]
) -> None:
    assert not violations(rule.expr, contract, RECORDED)


RECORDING = recording_rules()


@pytest.mark.parametrize("rule", RECORDING, ids=str)
def test_recording_rule_is_named_level_metric_operations(rule: Rule) -> None:
    assert rule.record is not None
    match = LEVEL_METRIC_OPERATIONS.match(rule.record)
    assert match, rule.record
    level = set(match["level"].split("_"))
    for aggregation in promql.aggregations(rule.expr):
        if not aggregation.without:
            assert set(aggregation.labels) <= level | {"le"}, (rule.record, aggregation)
    # A constant series carries exactly its level's labels (and a histogram_quantile's quantile).
    assert set(rule.labels) - {"quantile"} <= level


@pytest.mark.parametrize("rule", RECORDING, ids=str)
def test_recording_rule_has_a_promtool_case(rule: Rule) -> None:
    exprs = [
        case["expr"]
        for test_file in load_promtool_tests().values()
        for test in test_file["tests"]
        for case in test.get("promql_expr_test", [])
    ]
    assert rule.record is not None
    pattern = re.compile(rf"(?<![\w:]){re.escape(rule.record)}(?![\w:])")
    assert any(pattern.search(expr) for expr in exprs), f"no promql_expr_test reads {rule.record}"
