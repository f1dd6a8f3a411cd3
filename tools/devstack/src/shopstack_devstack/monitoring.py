"""`make monitor`: Prometheus, Alertmanager and the PostgreSQL and Redis exporters beside the
platform, from their Debian packages, configured from a ``monitoring/`` folder.

The scrape configuration, rules, alerts and routing are the folder's own (``monitoring/`` of
the repository unless ``SHOPSTACK_MONITORING_DIR`` names another, laid out the same way); only
the addresses change: every target and the Alertmanager are where this stack really runs them,
and the rule files are read from the folder where they are; a job with no target here is left
out. NGINX then runs Debian's build, which has ``stub_status`` for its exporter (the wheel's
has not), with the status on a loopback port of its own.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from shopstack_devstack.paths import REPO_ROOT

MONITORING_DIR = REPO_ROOT / "monitoring"
INSTALLER = MONITORING_DIR / "tools" / "install-tools"

# The binaries of Debian's packages (prometheus-alertmanager names its binary after itself).
BINARIES = {
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "postgres-exporter": "prometheus-postgres-exporter",
    "redis-exporter": "prometheus-redis-exporter",
    "nginx-exporter": "prometheus-nginx-exporter",
}


class MonitoringUnavailableError(RuntimeError):
    pass


def binary(name: str) -> str:
    found = shutil.which(BINARIES[name])
    if found is None:
        raise MonitoringUnavailableError(
            f"{BINARIES[name]} is not installed: `{INSTALLER} live` (run by `make monitor`) "
            "installs Debian's packages"
        )
    return found


@dataclass(frozen=True)
class MonitoringPorts:
    prometheus: int
    alertmanager: int
    postgres_exporter: int
    redis_exporter: int
    nginx_exporter: int
    # NGINX's stub_status, which the NGINX exporter reads.
    nginx_status: int


@dataclass(frozen=True)
class LocalMonitoring:
    """The configuration files, rendered under ``root``, and the commands that run on them."""

    source: Path
    root: Path
    ports: MonitoringPorts

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    @property
    def prometheus_config(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def alertmanager_config(self) -> Path:
        return self.root / "alertmanager.yml"

    def prepare(self, services: dict[str, list[int]]) -> None:
        """Write the configurations: ``services`` maps each service's job to the ports of its
        instances (every gateway instance is a target of the one job, as in the cluster)."""
        self.root.mkdir(parents=True, exist_ok=True)
        targets = {job: [f"127.0.0.1:{port}" for port in ports] for job, ports in services.items()}
        alertmanager = f"127.0.0.1:{self.ports.alertmanager}"
        targets |= {
            "postgres": [f"127.0.0.1:{self.ports.postgres_exporter}"],
            "redis": [f"127.0.0.1:{self.ports.redis_exporter}"],
            "nginx": [f"127.0.0.1:{self.ports.nginx_exporter}"],
            "prometheus": [f"127.0.0.1:{self.ports.prometheus}"],
            "alertmanager": [alertmanager],
        }
        config = render_prometheus_config(
            _load(self.source / "prometheus" / "prometheus.yml"),
            source=self.source / "prometheus",
            targets=targets,
            alertmanager=alertmanager,
        )
        self.prometheus_config.write_text(yaml.safe_dump(config, sort_keys=False))
        shutil.copyfile(self.source / "alertmanager" / "alertmanager.yml", self.alertmanager_config)

    def prometheus_command(self) -> list[str]:
        return [
            binary("prometheus"),
            f"--config.file={self.prometheus_config}",
            f"--storage.tsdb.path={self.root / 'prometheus-data'}",
            # The 28-day SLO windows need 28 days of samples (Debian's default keeps 15).
            "--storage.tsdb.retention.time=30d",
            f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
            "--enable-feature=exemplar-storage",
            "--log.level=warn",
        ]

    def alertmanager_command(self) -> list[str]:
        return [
            binary("alertmanager"),
            f"--config.file={self.alertmanager_config}",
            f"--storage.path={self.root / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}",
            # One instance: no gossip port to bind (and collide on).
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def postgres_exporter_command(self) -> list[str]:
        return [
            binary("postgres-exporter"),
            f"--web.listen-address=127.0.0.1:{self.ports.postgres_exporter}",
            # Its query of pg_stat_bgwriter names columns PostgreSQL 17 moved elsewhere.
            "--no-collector.bgwriter",
            "--log.level=warn",
        ]

    @staticmethod
    def postgres_exporter_env(database_url: str) -> dict[str, str]:
        # The embedded server speaks no TLS; the exporter's driver would insist on it.
        separator = "&" if "?" in database_url else "?"
        url = database_url
        if "sslmode=" not in url:
            url = f"{url}{separator}sslmode=disable"
        return {"DATA_SOURCE_NAME": url}

    def redis_exporter_command(self, redis_url: str) -> list[str]:
        parts = urlsplit(redis_url)
        address = f"redis://{parts.hostname}:{parts.port or 6379}"
        return [
            binary("redis-exporter"),
            "-redis.addr",
            address,
            "-web.listen-address",
            f"127.0.0.1:{self.ports.redis_exporter}",
        ]

    @property
    def nginx_status_listen(self) -> str:
        return f"127.0.0.1:{self.ports.nginx_status}"

    def nginx_exporter_command(self) -> list[str]:
        return [
            binary("nginx-exporter"),
            "-nginx.scrape-uri",
            f"http://{self.nginx_status_listen}/stub_status",
            "-web.listen-address",
            f"127.0.0.1:{self.ports.nginx_exporter}",
        ]


def render_prometheus_config(
    config: dict[str, Any], *, source: Path, targets: dict[str, list[str]], alertmanager: str
) -> dict[str, Any]:
    """``config`` with each job's targets from ``targets`` (jobs without any dropped), the
    Alertmanager at ``alertmanager`` and rule files resolved against ``source``."""
    rendered = dict(config)
    rendered["rule_files"] = [
        str((source / pattern).resolve()) if not Path(pattern).is_absolute() else pattern
        for pattern in config.get("rule_files", [])
    ]
    rendered["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    jobs = []
    for job in config.get("scrape_configs", []):
        name = job["job_name"]
        if targets.get(name):
            jobs.append({**job, "static_configs": [{"targets": targets[name]}]})
    rendered["scrape_configs"] = jobs
    return rendered


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise MonitoringUnavailableError(f"{path} is not a YAML mapping")
    return loaded
