"""Running a service the way production runs it: its server, and its metrics port.

``serve`` of every service takes all its options from the service's settings (the
environment), so the Dockerfile, the chart, ``make up`` and skaffold run the same command with
no arguments.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from shopstack_common.settings import ServiceSettings


def prepare_multiprocess_metrics(service: str, workers: int) -> None:
    """With several worker processes prometheus-client runs in multiprocess mode, so /metrics
    counts every worker. It picks its storage when first imported: call this before anything
    imports it. Samples of an earlier run's workers must not be added to this run's."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not configured and workers <= 1:
        return
    directory = Path(configured or tempfile.mkdtemp(prefix=f"shopstack-{service}-metrics-"))
    # Emptied, not removed: in a pod the directory is an emptyDir's mount point.
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def start_metrics_server(settings: ServiceSettings) -> None:
    """Serve /metrics on ``METRICS_PORT`` from a thread of this process (the server's master
    when there are workers: it reads every worker's samples)."""
    if settings.metrics_port is None:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, addr=settings.host, registry=registry)


# After SIGTERM, idle connections are left this long to the proxy, which closes them itself:
# NGINX here after 4 s idle; in a cluster the pod has left the Service's endpoints during the
# preStop pause already, so the controller no longer picks them.
DRAIN_SECONDS = 6


def serve_asgi(app: str, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Run ``app`` (``package.module:attribute``) under uvicorn. Our own middleware writes the
    access log, so uvicorn's is off. With one worker, SIGTERM drains (``DrainingServer``).
    ``uvicorn_options`` are a service's own (the gateway's WebSocket heartbeat)."""
    prepare_multiprocess_metrics(settings.service_name, settings.web_concurrency)
    start_metrics_server(settings)

    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.web_concurrency,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "server_header": False,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_graceful_shutdown": int(settings.graceful_timeout_seconds),
        **uvicorn_options,
    }
    if settings.web_concurrency > 1:
        # uvicorn's worker processes build their own (plain) Server.
        uvicorn.run(app, **options)
        return
    from shopstack_common.draining import DrainingServer

    server = DrainingServer(uvicorn.Config(app, **options), drain_seconds=DRAIN_SECONDS)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


STARTUP_FAILURE = 3  # uvicorn's own exit code for a server that never started
