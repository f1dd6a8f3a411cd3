"""checkov over everything the chart renders, with the chart's own config (0 failed checks)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import CHART, REPO, VALUES, run_helm, template_args

pytestmark = pytest.mark.deploy

# checkov pins versions of packages the workspace also uses (pytest, packaging), so it runs in
# an environment of its own, made by uv from PyPI; the Makefile names the same version.
CHECKOV = "checkov==3.3.30"
UV = REPO / ".tools" / "uv" / "bin" / "uv"


def test_checkov_passes_every_values_file(helm: Path, tmp_path: Path) -> None:
    for values in VALUES:
        result = run_helm(helm, *template_args(values, {}))
        assert result.returncode == 0, result.stderr
        (tmp_path / f"{values}.yaml").write_text(result.stdout)
    checkov = subprocess.run(
        [
            str(UV),
            "tool",
            "run",
            "--from",
            CHECKOV,
            "checkov",
            "--config-file",
            str(CHART / ".checkov.yaml"),
            "--directory",
            str(tmp_path),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    reports = json.loads(checkov.stdout)
    summary = reports["summary"] if isinstance(reports, dict) else reports[0]["summary"]
    failed = reports["results"]["failed_checks"] if isinstance(reports, dict) else []
    assert summary["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]
    assert summary["passed"] > 0
    assert checkov.returncode == 0, checkov.stderr[-2000:]
