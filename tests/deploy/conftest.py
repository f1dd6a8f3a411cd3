"""The chart and image checks: helm from .tools/bin (installed on first use), real schemas."""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "shopstack"
# make passes the helm it chose (one on the PATH when recent enough); else the fetched one.
HELM = Path(os.environ.get("SHOPSTACK_HELM") or REPO / ".tools" / "bin" / "helm")
NAMESPACE = "shopstack"
RELEASE = "shop"

# The values the checks render with: the chart's defaults (dev mode), production with Secrets
# made beforehand, the in-chart data stores beside existing Secrets, Gateway API instead of an
# Ingress (with every optional piece on), and everything optional off.
VALUES = {
    "dev": CHART / "ci" / "dev-values.yaml",
    "production": CHART / "values-production.yaml",
    "in-chart-databases": CHART / "ci" / "in-chart-databases-values.yaml",
    "gateway-api": CHART / "ci" / "gateway-api-values.yaml",
    "everything-off": CHART / "ci" / "everything-off-values.yaml",
}

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def helm() -> Path:
    if not HELM.exists():
        # The same installer `make test-deploy` uses; it fails loudly without npm.
        subprocess.run(
            [str(REPO / "tools" / "k8s" / "install-binaries"), str(HELM.parent)], check=True
        )
    return HELM


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def template_args(values: str, sets: dict[str, str]) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(VALUES[values])]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """``helm template`` of one values file of the matrix plus ``--set`` pairs, parsed."""
    cache: dict[tuple[str, tuple[tuple[str, str], ...]], list[Manifest]] = {}

    def rendered(values: str, sets: dict[str, str] | None = None) -> list[Manifest]:
        key = (values, tuple(sorted((sets or {}).items())))
        if key not in cache:
            result = run_helm(helm, *template_args(values, dict(key[1])))
            assert result.returncode == 0, result.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return rendered


def render_error(helm: Path, values: str, sets: dict[str, str]) -> str:
    """What ``helm template`` says when it refuses the values."""
    result = run_helm(helm, *template_args(values, sets))
    assert result.returncode != 0, f"helm template accepted {sets}"
    return result.stderr


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Manifest], kind: str, name: str) -> Manifest:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_spec(doc: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return spec


def containers(doc: Manifest) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "Pod"}
