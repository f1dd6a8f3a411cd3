"""No engine, a clear message; interrupted, nothing left behind; the survey command."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from shopstack_rehearse.engine import RUN_LABEL, EngineMissingError, ImageMap, connect

UNREACHABLE = "tcp://127.0.0.1:9"


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", UNREACHABLE)
    with pytest.raises(EngineMissingError, match=f"no Docker engine answers at {UNREACHABLE}"):
        connect()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopstack_rehearse", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


MANIFESTS = Path(__file__).parent / "manifests"
SMALL = (MANIFESTS / "engine-small.yaml").read_text()


def test_the_cli_fails_clearly_without_an_engine(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(textwrap.dedent(SMALL).replace("      hostNetwork: true\n", ""))
    result = cli("run", "--manifests", str(rendered), env={"DOCKER_HOST": UNREACHABLE})
    assert result.returncode == 1
    assert "rehearsal failed: no Docker engine answers at tcp://127.0.0.1:9" in result.stderr


def test_survey_names_each_unmodelled_field(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(textwrap.dedent(SMALL))
    result = cli("survey", "--manifests", str(rendered), "--namespace", "shop")
    assert result.returncode == 1
    assert (
        "FATAL Deployment/shop/web spec.template.spec.hostNetwork: host networking is not modelled"
        in result.stdout
    )


def start_run(tmp_path: Path, docker_client, app_image: str) -> tuple[subprocess.Popen[str], str]:  # type: ignore[no-untyped-def]
    """A CLI run of a pod that never gets ready, once its first container exists."""
    rendered = tmp_path / "rendered.yaml"
    small = textwrap.dedent(SMALL).replace("      hostNetwork: true\n", "")
    rendered.write_text(small.replace("IMAGE", app_image))
    command = [sys.executable, "-m", "shopstack_rehearse", "run", "--manifests", str(rendered)]
    process = subprocess.Popen(
        [*command, "--timeout", "120"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    run_id = ""
    for line in process.stdout:
        if line.startswith("rehearse: rehearsal "):
            run_id = line.split()[2].rstrip(":")
            break
    assert run_id, "the run did not start"
    containers = {"label": [f"{RUN_LABEL}={run_id}", "shopstack.rehearse/role=container"]}
    deadline = time.monotonic() + 60
    while not docker_client.api.containers(filters=containers):
        assert time.monotonic() < deadline, "no container started"
        time.sleep(0.2)
    return process, run_id


def leftovers(docker_client, run_id: str) -> list[object]:  # type: ignore[no-untyped-def]
    selector = {"label": f"{RUN_LABEL}={run_id}"}
    return [
        *docker_client.api.containers(all=True, filters=selector),
        *docker_client.api.networks(filters=selector),
        *(docker_client.api.volumes(filters=selector)["Volumes"] or []),
        *Path(tempfile.gettempdir()).glob(f"shopstack-rehearse-{run_id}-*"),
    ]


@pytest.mark.rehearse
def test_an_interrupted_run_removes_everything(
    tmp_path: Path, docker_client, app_image: str
) -> None:  # type: ignore[no-untyped-def]
    process, run_id = start_run(tmp_path, docker_client, app_image)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=90)[0]
    assert process.returncode == 130, output
    assert "interrupted: everything the rehearsal made is removed" in output
    assert leftovers(docker_client, run_id) == []


@pytest.mark.rehearse
def test_clean_removes_what_a_killed_run_left(
    tmp_path: Path, docker_client, app_image: str
) -> None:  # type: ignore[no-untyped-def]
    process, run_id = start_run(tmp_path, docker_client, app_image)
    process.kill()
    process.communicate(timeout=30)
    assert leftovers(docker_client, run_id) != []
    result = cli("clean")
    assert result.returncode == 0, result.stderr
    assert f"run {run_id}: removed" in result.stdout
    assert leftovers(docker_client, run_id) == []
    assert not ([])


@pytest.mark.parametrize(
    ("rule", "image", "local"),
    [
        ("shopstack/*:*=shopstack/*:dev", "shopstack/users:0.1.0", "shopstack/users:dev"),
        (
            "registry.example.com/*=*",
            "registry.example.com/shopstack/orders:1.2.3",
            "shopstack/orders:1.2.3",
        ),
        ("postgres:17=airgap/postgres:15", "postgres:17", "airgap/postgres:15"),
        ("postgres:17=airgap/postgres:15", "redis:7", "redis:7"),
    ],
)
def test_rendered_images_map_to_local_tags(rule: str, image: str, local: str) -> None:
    assert ImageMap.parse([rule]).resolve(image) == local
