"""gunicorn settings for the users service (``gunicorn -c python:shopstack_users.gunicorn_conf``),
every one of them from ``UsersSettings`` (the environment).

Metrics run in prometheus-client's multiprocess mode so /metrics counts every worker; the
directory is emptied when the master starts and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from shopstack_common.logs import gunicorn_logconfig_dict
from shopstack_common.serving import prepare_multiprocess_metrics, start_metrics_server
from shopstack_users.config import UsersSettings

# prometheus-client picks its storage when first imported, so the directory must be known
# before anything imports it (the workers inherit the master's modules when they fork).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shopstack-users-metrics-")

from prometheus_client import multiprocess

_settings = UsersSettings()
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_concurrency
threads = _settings.web_threads
worker_class = "gthread"
graceful_timeout = int(_settings.graceful_timeout_seconds)
timeout = 30
keepalive = 5
forwarded_allow_ips = _settings.forwarded_allow_ips
accesslog = None
# Replicas and local runs would share one default socket path; nothing here uses it.
control_socket_disable = True
logconfig_dict = gunicorn_logconfig_dict(_settings.service_name, _settings.log_level)


def on_starting(_server: Any) -> None:
    prepare_multiprocess_metrics(_settings.service_name, _settings.web_concurrency)


def when_ready(_server: Any) -> None:
    start_metrics_server(_settings)


def child_exit(_server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
