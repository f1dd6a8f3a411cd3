"""make uses a helm already on the PATH when it is recent enough, and fetches one otherwise."""

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.deploy


def chosen_helm(path_dir: Path) -> str:
    env = {**os.environ, "PATH": f"{path_dir}:/usr/bin:/bin"}
    result = subprocess.run(
        ["make", "-s", "--eval", "_helm: ; @echo $(HELM)", "_helm"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def fake_helm(directory: Path, version: str) -> Path:
    directory.mkdir()
    helm = directory / "helm"
    helm.write_text(f"#!/bin/sh\necho '{version}'\n")
    helm.chmod(0o755)
    return helm


@pytest.mark.parametrize("version", ["v3.14.0+g3fc9f4b", "v3.19.2+g8766e71", "v4.0.1+gabc"])
def test_a_recent_helm_on_the_path_is_used(tmp_path: Path, version: str) -> None:
    helm = fake_helm(tmp_path / "bin", version)
    assert chosen_helm(helm.parent) == str(helm)


@pytest.mark.parametrize("version", ["v3.13.3+g1234567", "v2.17.0+ga690bad", "garbage"])
def test_an_old_helm_on_the_path_is_passed_over(tmp_path: Path, version: str) -> None:
    helm = fake_helm(tmp_path / "bin", version)
    assert chosen_helm(helm.parent) == ".tools/bin/helm"
