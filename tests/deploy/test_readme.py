"""The chart's README lists every value, as values.yaml documents it."""

import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.deploy


def test_the_parameter_tables_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "k8s" / "chart-parameters"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
