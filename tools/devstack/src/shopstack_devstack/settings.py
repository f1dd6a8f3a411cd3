"""What `make up` reads from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstack_devstack.paths import REPO_ROOT


class DevstackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTACK_", extra="ignore")

    data_dir: Path = REPO_ROOT / ".devstack"
    # Real servers instead of the embedded ones, when set (no SHOPSTACK_ prefix).
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL"))
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))

    nginx_port: int = 8080
    gateway_port: int = 8000
    users_port: int = 8001
    orders_port: int = 8002
    # The outbox relay's /metrics (it serves nothing else).
    orders_relay_port: int = 8012
    postgres_port: int = 55432
    redis_port: int = 56379

    # `make monitor` (SHOPSTACK_MONITORING=1): Prometheus, Alertmanager and the exporters too,
    # configured from monitoring_dir (the repository's monitoring/ folder unless set).
    monitoring: bool = False
    monitoring_dir: Path = REPO_ROOT / "monitoring"
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    postgres_exporter_port: int = 9187
    redis_exporter_port: int = 9121
    nginx_exporter_port: int = 9113
    nginx_status_port: int = 8081

    # Gateway processes behind NGINX; the second and further listen on gateway_extra_port and
    # up. Two let a SIGTERM to one drop nothing: NGINX sends to the other meanwhile.
    gateway_instances: int = Field(default=1, ge=1, le=8)
    gateway_extra_port: int = 8010

    users_workers: int = 2
    users_threads: int = 4
    orders_workers: int = 1
    gateway_workers: int = 1

    @property
    def gateway_ports(self) -> list[int]:
        extra = range(self.gateway_extra_port, self.gateway_extra_port + self.gateway_instances - 1)
        return [self.gateway_port, *extra]

    log_level: str = "INFO"
    log_format: str = Field(default="pretty", pattern="^(pretty|json)$")
    start_timeout_seconds: float = 90.0
    # parallel: each part starts as soon as what it needs is up (both migrations at once,
    # orders beside users, the gateway once users serves its signing keys). sequential: one
    # part after another, the order before start-up ran in parallel (the start benchmark's
    # baseline, and a plainer log to read when a start-up goes wrong).
    start_order: str = Field(default="parallel", pattern="^(parallel|sequential)$")
    # Compile the bytecode before the services start (bytecode.py). false: each process
    # compiles what it imports as it starts, as before (the start benchmark's first baseline).
    compile_bytecode: bool = True
