"""The monitoring checks: promtool and amtool on the real files, and the rules the alerts,
rules, runbooks and dashboards follow. promtool and amtool come from Debian's packages: when
one is missing, the installer `make test-monitoring` uses runs first, and where it cannot
install them the test fails with its reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shopstack_dashboards.contract import Metric, load_contract
from shopstack_dashboards.paths import MONITORING

INSTALLER = MONITORING / "tools" / "install-tools"
HERE = Path(__file__).parent
LIVE = HERE / "live"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # live/ runs the platform and a real Prometheus: its own tier (`make test-monitoring-live`).
    for item in items:
        if LIVE in item.path.parents:
            item.add_marker(pytest.mark.monitoring_live)
        elif HERE in item.path.parents:
            item.add_marker(pytest.mark.monitoring)


def _tool(name: str) -> Path:
    found = shutil.which(name)
    if found is None:
        subprocess.run([str(INSTALLER), "check"], check=True)
        found = shutil.which(name)
    assert found is not None, f"{name} is still not on PATH after `{INSTALLER} check`"
    return Path(found)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> Path:
    return _tool("amtool")


@pytest.fixture(scope="session")
def contract() -> dict[str, Metric]:
    return load_contract()
