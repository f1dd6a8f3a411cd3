"""The files as Prometheus, promtool and Alertmanager read them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shopstack_dashboards.paths import MONITORING

from .monitoring_files import load_promtool_tests, promtool_test_files, rule_files

ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )


def test_prometheus_config_and_the_rule_files_it_loads_are_valid(promtool: Path) -> None:
    result = run(promtool, "check", "config", MONITORING / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The config loads every file of rules/ and alerts/, none left out.
    for path in rule_files():
        assert str(path.relative_to(MONITORING)) in result.stdout, result.stdout


def test_rule_files_are_valid(promtool: Path) -> None:
    result = run(promtool, "check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", promtool_test_files(), ids=lambda path: path.name)
def test_promtool_rule_tests_pass(promtool: Path, test_file: Path) -> None:
    result = run(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_is_loaded_by_a_promtool_test() -> None:
    loaded = {
        (path.parent / name).resolve()
        for path, test in load_promtool_tests().items()
        for name in test["rule_files"]
    }
    assert {path.resolve() for path in rule_files()} <= loaded


def test_alertmanager_config_is_valid(amtool: Path) -> None:
    result = run(amtool, "check-config", ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page", "alertname=ShopstackGatewayDown"], "page"),
        (["severity=ticket", "alertname=ShopstackRedisDown"], "ticket"),
        (["alertname=SomethingWithoutSeverity"], "ticket"),
    ],
)
def test_alertmanager_routes_by_severity(amtool: Path, labels: list[str], receiver: str) -> None:
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
