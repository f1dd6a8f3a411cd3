"""`make monitor`'s configuration: the repository's scrape config with the stack's own
addresses, and the exporters' connection settings."""

from __future__ import annotations

import glob
from pathlib import Path

import yaml

from shopstack_devstack.monitoring import (
    MONITORING_DIR,
    LocalMonitoring,
    MonitoringPorts,
    render_prometheus_config,
)

PORTS = MonitoringPorts(
    prometheus=19090,
    alertmanager=19093,
    postgres_exporter=19187,
    redis_exporter=19121,
    nginx_exporter=19113,
    nginx_status=18081,
)


def test_every_job_scrapes_where_the_stack_runs_it(tmp_path: Path) -> None:
    monitoring = LocalMonitoring(source=MONITORING_DIR, root=tmp_path, ports=PORTS)
    monitoring.prepare(
        {"gateway": [18000, 18010], "users": [18001], "orders": [18002], "orders-relay": [18012]}
    )
    config = yaml.safe_load(monitoring.prometheus_config.read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {
        "gateway": ["127.0.0.1:18000", "127.0.0.1:18010"],
        "users": ["127.0.0.1:18001"],
        "orders": ["127.0.0.1:18002"],
        "orders-relay": ["127.0.0.1:18012"],
        "postgres": ["127.0.0.1:19187"],
        "redis": ["127.0.0.1:19121"],
        "nginx": ["127.0.0.1:19113"],
        "prometheus": ["127.0.0.1:19090"],
        "alertmanager": ["127.0.0.1:19093"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"
    ]
    # The rule files are read where they are: every one of monitoring/rules and alerts.
    loaded = sorted(Path(p) for pattern in config["rule_files"] for p in glob.glob(pattern))
    expected = sorted([*MONITORING_DIR.glob("rules/*.yaml"), *MONITORING_DIR.glob("alerts/*.yaml")])
    assert [p.resolve() for p in loaded] == [p.resolve() for p in expected]
    assert (
        monitoring.alertmanager_config.read_text()
        == (MONITORING_DIR / "alertmanager" / "alertmanager.yml").read_text()
    )


def test_the_rest_of_the_configuration_is_the_files_own() -> None:
    source = {
        "global": {"scrape_interval": "7s"},
        "rule_files": ["/abs/*.yaml"],
        "scrape_configs": [],
    }
    rendered = render_prometheus_config(source, source=Path("/x"), targets={}, alertmanager="a:1")
    assert rendered["global"] == {"scrape_interval": "7s"}
    assert rendered["rule_files"] == ["/abs/*.yaml"]


def test_the_exporters_reach_the_stack_s_servers() -> None:
    env = LocalMonitoring.postgres_exporter_env("postgresql://u:p@127.0.0.1:5432/db")
    assert env == {"DATA_SOURCE_NAME": "postgresql://u:p@127.0.0.1:5432/db?sslmode=disable"}
    kept = LocalMonitoring.postgres_exporter_env("postgresql://h/db?sslmode=require")
    assert kept["DATA_SOURCE_NAME"].endswith("?sslmode=require")
