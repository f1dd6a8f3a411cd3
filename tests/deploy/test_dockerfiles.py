"""The service images must build on an engine with the classic builder and no registry."""

import re
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.deploy

DOCKERFILES = sorted(REPO.glob("services/*/Dockerfile"))


def test_every_service_has_a_dockerfile() -> None:
    assert [p.parent.name for p in DOCKERFILES] == ["gateway", "orders", "users"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_classic_builder_syntax_and_a_configurable_base(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0].startswith("ARG PYTHON_IMAGE=")
    assert all(
        line.startswith("FROM ${PYTHON_IMAGE}") for line in instructions if line.startswith("FROM")
    )
    assert "--mount" not in text
    assert not re.search(r"<<-?\s*['\"]?[A-Z]+", text), "heredocs need BuildKit"
    # COPY --from may name only a stage of this file, never a registry image.
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", text, re.MULTILINE))
    for source in re.findall(r"COPY --from=(\S+)", text):
        assert source in stages
    assert re.search(r"^USER \d+", text, re.MULTILINE), "the runtime stage runs unprivileged"
