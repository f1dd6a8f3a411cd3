"""Every alert: its labels and annotations, its runbook section, its promtool cases, and for
the SLO alerts the burn-rate table of the SRE workbook."""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest

from .monitoring_files import RUNBOOKS, Rule, alert_rules, load_promtool_tests

SEVERITIES = {"page", "ticket"}
RUNBOOK_URL = re.compile(r"^monitoring/runbooks/(?P<file>[a-z0-9_-]+\.md)#(?P<anchor>[a-z0-9-]+)$")
RUNBOOK_PARTS = ("**What it means.**", "**What to check first.**", "**How to mitigate.**")
# The SRE workbook's table: long window -> (burn rate, short window, severity).
BURN_RATES = {
    "1h": ("14.4", "5m", "page"),
    "6h": ("6", "30m", "page"),
    "1d": ("3", "2h", "ticket"),
    "3d": ("1", "6h", "ticket"),
}


def heading_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, spaces to dashes, punctuation dropped."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


@functools.cache
def runbook_sections() -> dict[tuple[str, str], str]:
    """(file, anchor) -> the text of that ``##`` section."""
    sections: dict[tuple[str, str], str] = {}
    for path in sorted(RUNBOOKS.glob("*.md")):
        for chunk in re.split(r"^## ", path.read_text(), flags=re.MULTILINE)[1:]:
            heading, _, body = chunk.partition("\n")
            sections[(path.name, heading_anchor(heading))] = body
    return sections


ALERTS = alert_rules()


@pytest.mark.parametrize("rule", ALERTS, ids=str)
def test_alert_has_severity_summary_description_and_runbook(rule: Rule) -> None:
    assert rule.labels.get("severity") in SEVERITIES
    for name in ("summary", "description", "runbook_url"):
        assert rule.annotations.get(name, "").strip(), f"{rule} has no {name}"
    assert rule.alert is not None
    assert rule.alert.startswith("Shopstack")


@pytest.mark.parametrize("rule", ALERTS, ids=str)
def test_runbook_url_points_at_a_section_that_says_what_to_do(rule: Rule) -> None:
    match = RUNBOOK_URL.match(rule.annotations["runbook_url"])
    assert match, rule.annotations["runbook_url"]
    sections = runbook_sections()
    key = (match["file"], match["anchor"])
    assert key in sections, f"no section #{key[1]} in runbooks/{key[0]}"
    assert rule.alert is not None
    assert match["anchor"] == heading_anchor(rule.alert), "the section is named after its alert"
    for part in RUNBOOK_PARTS:
        assert part in sections[key], f"runbooks/{key[0]}#{key[1]} lacks {part}"


def test_every_runbook_section_belongs_to_an_alert() -> None:
    alerts = {heading_anchor(rule.alert or "") for rule in ALERTS}
    orphans = [f"{file}#{anchor}" for file, anchor in runbook_sections() if anchor not in alerts]
    assert not orphans


def test_runbook_index_lists_every_alert() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    missing = sorted({rule.name for rule in ALERTS if f"`{rule.name}`" not in index})
    assert not missing


def _alert_cases(alertname: str) -> list[list[list[dict[str, Any]]]]:
    """Per promtool test (one set of input series), the exp_alerts of its checks of
    ``alertname``."""
    cases = []
    for test_file in load_promtool_tests().values():
        for test in test_file["tests"]:
            checks = [
                case.get("exp_alerts") or []
                for case in test.get("alert_rule_test", [])
                if case["alertname"] == alertname
            ]
            if checks:
                cases.append(checks)
    return cases


@pytest.mark.parametrize("rule", ALERTS, ids=str)
def test_alert_has_a_case_that_fires_it(rule: Rule) -> None:
    """A case expects this very rule to fire: its alert name with all the rule's labels."""
    assert rule.alert is not None
    fired = [
        alert
        for checks in _alert_cases(rule.alert)
        for expected in checks
        for alert in expected
        if rule.labels.items() <= {k: str(v) for k, v in alert["exp_labels"].items()}.items()
    ]
    assert fired, f"no promtool case fires {rule}"


@pytest.mark.parametrize("rule", ALERTS, ids=str)
def test_alert_has_a_case_where_it_stays_silent(rule: Rule) -> None:
    """Healthy data: a promtool test whose every check of this alert expects nothing (a check
    while the alert is still pending, in a test that then fires it, does not count)."""
    assert rule.alert is not None
    silent = [checks for checks in _alert_cases(rule.alert) if not any(checks)]
    assert silent, f"no promtool test shows {rule.alert} silent on healthy data"


SLO_ALERTS = [rule for rule in ALERTS if "slo" in rule.labels]


@pytest.mark.parametrize("rule", SLO_ALERTS, ids=str)
def test_slo_alert_follows_the_burn_rate_table(rule: Rule) -> None:
    long_window = rule.labels["long_window"]
    burn, short_window, severity = BURN_RATES[long_window]
    assert rule.labels["short_window"] == short_window
    assert rule.labels["severity"] == severity
    expr = " ".join(rule.expr.split())
    for window in (long_window, short_window):
        assert re.search(
            rf":ratio_rate{window} > on \(job\) \({re.escape(burn)} \* \(1 - ", expr
        ), expr


def test_every_slo_has_all_four_window_pairs() -> None:
    pairs: dict[str, set[str]] = {}
    for rule in SLO_ALERTS:
        pairs.setdefault(rule.labels["slo"], set()).add(rule.labels["long_window"])
    assert pairs == {"availability": set(BURN_RATES), "latency": set(BURN_RATES)}
