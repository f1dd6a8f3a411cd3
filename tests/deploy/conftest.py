"""The chart and image checks: helm from .tools/bin (installed on first use), real schemas."""

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "shopstack"
HELM = REPO / ".tools" / "bin" / "helm"

Render = Callable[..., list[dict[str, Any]]]


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


@pytest.fixture
def render(helm: Path) -> Render:
    """``helm template`` with the given values files and ``--set`` pairs, parsed."""

    def rendered(*values_files: str, **sets: str) -> list[dict[str, Any]]:
        args = ["template", "shop", str(CHART)]
        for name in values_files:
            args += ["-f", str(CHART / "ci" / name)]
        for key, value in sets.items():
            args += ["--set", f"{key.replace('__', '.')}={value}"]
        result = run_helm(helm, *args)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return rendered
