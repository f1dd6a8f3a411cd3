"""gunicorn settings for the users service (``gunicorn -c python:shopstack_users.gunicorn_conf``).

Metrics run in prometheus-client's multiprocess mode so /metrics counts every worker; the
directory is emptied when the master starts and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# prometheus-client picks its storage when first imported, so the directory must be known
# before anything imports it (the workers inherit the master's modules when they fork).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shopstack-users-metrics-")

from prometheus_client import multiprocess

from shopstack_common.logs import gunicorn_logconfig_dict

worker_class = "gthread"
graceful_timeout = 20
timeout = 30
keepalive = 5
accesslog = None
# Replicas and local runs would share one default socket path; nothing here uses it.
control_socket_disable = True
logconfig_dict = gunicorn_logconfig_dict("users", os.environ.get("LOG_LEVEL", "INFO"))


def on_starting(_server: Any) -> None:
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def child_exit(_server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
