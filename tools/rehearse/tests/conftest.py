"""The rehearsal's own tests: small manifests through a real Docker engine.

Tests marked ``rehearse`` need an engine and fail (never skip) without one. Their workload
is one tiny image built here from PYTHON_IMAGE with the classic builder."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shopstack_rehearse.engine import RUN_LABEL, connect
from shopstack_rehearse.manifests import Manifests, parse_stream
from shopstack_rehearse.pods import KubeletSettings
from shopstack_rehearse.rehearsal import Options, Rehearsal

APP_DIR = Path(__file__).parent / "app"
APP_IMAGE = "shopstack-rehearse-test/app:latest"
NAMESPACE = "shop"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    client = connect()  # raises with the reason when no engine answers: the tier fails
    yield client
    client.close()


@pytest.fixture(scope="session")
def app_image(docker_client: Any) -> str:
    base = os.environ.get("PYTHON_IMAGE", "python:3.11-slim")
    docker_client.images.build(
        path=str(APP_DIR), tag=APP_IMAGE, buildargs={"PYTHON_IMAGE": base}, rm=True, forcerm=True
    )
    return APP_IMAGE


Render = Callable[[str], Manifests]


@pytest.fixture
def render() -> Render:
    """Objects from YAML written in a test; ``APP_IMAGE`` stands for the test workload."""

    def parse(text: str) -> Manifests:
        return parse_stream(textwrap.dedent(text).replace("APP_IMAGE", APP_IMAGE), NAMESPACE)

    return parse


def fast_options(**overrides: Any) -> Options:
    """Kubelet and Job back-offs of a second instead of ten, and short waits."""
    settings: dict[str, Any] = {
        "namespace": NAMESPACE,
        "timeout": 60,
        "max_restarts": 3,
        "publish_port": 0,
        "kubelet": KubeletSettings(backoff_seconds=0.5, max_backoff_seconds=2),
        "job_backoff_seconds": 0.5,
    }
    settings.update(overrides)
    return Options(**settings)


RehearsalFactory = Callable[..., Rehearsal]


@pytest.fixture
def rehearsal(docker_client: Any, app_image: str) -> Iterator[RehearsalFactory]:
    """Start a rehearsal with test options; every one started is closed, and the test
    fails if anything it made is left behind."""
    started: list[Rehearsal] = []

    def start(**overrides: Any) -> Rehearsal:
        instance = Rehearsal(fast_options(**overrides), client=connect())
        started.append(instance)
        instance.start()
        return instance

    yield start
    for instance in started:
        instance.close()
        selector = {"label": f"{RUN_LABEL}={instance.run.run_id}"}
        left = (
            docker_client.api.containers(all=True, filters=selector)
            + docker_client.api.networks(filters=selector)
            + (docker_client.api.volumes(filters=selector)["Volumes"] or [])
        )
        assert not left, f"the rehearsal left {left} behind"
        assert not instance.volumes_root.exists()
