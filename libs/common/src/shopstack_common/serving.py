"""Running a FastAPI service under uvicorn, the way production runs it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def serve_asgi(app: str, *, host: str, port: int, workers: int, proxy_headers: bool = True) -> None:
    """Run ``app`` (``package.module:attribute``) under uvicorn.

    With several workers prometheus-client runs in multiprocess mode, so /metrics counts
    every worker. Our own middleware writes the access log, so uvicorn's is off.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured or workers > 1:
        directory = Path(
            configured or tempfile.mkdtemp(prefix=f"{app.split('.', maxsplit=1)[0]}-metrics-")
        )
        # Samples of an earlier run's workers must not be added to this run's.
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)

    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=proxy_headers,
        # None: uvicorn reads FORWARDED_ALLOW_IPS (default loopback), which the chart sets
        # to the pod network, where the proxy in front is not on loopback.
        forwarded_allow_ips=None,
        server_header=False,
        timeout_graceful_shutdown=20,
    )
