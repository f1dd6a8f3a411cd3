"""skaffold.yaml: a current schema, the images the chart expects, the values it sets exist."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, REPO, run_helm

pytestmark = pytest.mark.deploy

CONFIG: dict[str, Any] = yaml.safe_load((REPO / "skaffold.yaml").read_text())


def _values_paths(values: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in values.items():
        paths.add(f"{prefix}{key}")
        if isinstance(value, dict):
            paths |= _values_paths(value, f"{prefix}{key}.")
    return paths


def test_the_schema_is_v4beta13_or_newer() -> None:
    version = CONFIG["apiVersion"].removeprefix("skaffold/")
    assert version.startswith("v4beta")
    assert int(version.removeprefix("v4beta")) >= 13


def test_each_artifact_builds_its_service_from_the_one_dockerfile() -> None:
    for artifact in CONFIG["build"]["artifacts"]:
        service = artifact["image"].removeprefix("shopstack/")
        assert artifact["docker"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert artifact["docker"]["buildArgs"]["SERVICE"] == service
    assert CONFIG["build"]["local"]["useBuildkit"] is False


def test_every_value_skaffold_sets_is_a_value_of_the_chart() -> None:
    known = _values_paths(yaml.safe_load((CHART / "values.yaml").read_text()))
    (release,) = CONFIG["deploy"]["helm"]["releases"]
    profiles = {p["name"]: p for p in CONFIG["profiles"]}
    dev_values = profiles["dev"]["patches"][0]["value"]
    for key in [*release["setValueTemplates"], *dev_values]:
        assert key in known, key
    # skaffold names an artifact in templates with "/" and "-" made "_".
    images = {a["image"].replace("/", "_") for a in CONFIG["build"]["artifacts"]}
    for template in release["setValueTemplates"].values():
        match = re.fullmatch(r"\{\{\.IMAGE_(?:DOMAIN|REPO_NO_DOMAIN|TAG)_(\w+)\}\}", template)
        assert match, template
        assert match.group(1) in images
    (prod_files,) = [p["value"] for p in profiles["prod"]["patches"]]
    for path in prod_files:
        assert (REPO / path).is_file()


def test_dev_forwards_the_gateway_service_the_chart_renders(helm: Path) -> None:
    (release,) = CONFIG["deploy"]["helm"]["releases"]
    (forward,) = next(p for p in CONFIG["profiles"] if p["name"] == "dev")["portForward"]
    rendered = run_helm(
        helm,
        "template",
        release["name"],
        str(REPO / release["chartPath"]),
        "--namespace",
        release["namespace"],
        "--show-only",
        "templates/gateway/service.yaml",
    )
    assert rendered.returncode == 0, rendered.stderr
    service = yaml.safe_load(rendered.stdout)
    assert forward["resourceName"] == service["metadata"]["name"]
    assert forward["port"] in [p["port"] for p in service["spec"]["ports"] if p["name"] == "http"]
