"""`make load`'s locustfile, run briefly against the local platform, so it cannot rot: every
journey runs, nothing fails, and the gateway's log marks the traffic as synthetic."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstack_devstack.local_platform import LocalPlatform
from tests.e2e.conftest import _platform

pytestmark = pytest.mark.e2e

RUNNER = Path(__file__).resolve().parents[2] / "tools" / "load" / "run.py"
JOURNEYS = ("browse", "search", "register", "sign in", "order", "overview", "cancel", "admin")


@pytest.fixture(scope="module")
def load_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    # The platform `make load` starts for itself: one client address, so no rate limits.
    for stack in _platform(
        tmp_path_factory.mktemp("devstack"), {"GATEWAY_RATE_LIMIT__ENABLED": "false"}
    ):
        stack.start()
        yield stack
        assert stack.stop() == 0, stack.log()[-4000:]


def test_every_journey_runs_without_a_failure(load_platform: LocalPlatform, tmp_path: Path) -> None:
    env = {**os.environ, "LOAD_URL": load_platform.url, "LOAD_RESULTS": str(tmp_path),
           "LOAD_DURATION": "15", "LOAD_USERS": "8", "LOAD_SPAWN_RATE": "8",
           "LOAD_THINK_MIN": "0.1", "LOAD_THINK_MAX": "0.5"}  # fmt: skip
    run = subprocess.run(
        [sys.executable, str(RUNNER)], check=False, env=env, capture_output=True, timeout=120
    )
    output = (
        run.stdout.decode(errors="replace")[-3000:] + run.stderr.decode(errors="replace")[-3000:]
    )
    assert run.returncode == 0, output

    with (tmp_path / "load_stats.csv").open() as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert rows["Aggregated"]["Failure Count"] == "0"
    for journey in JOURNEYS:
        ran = [name for name in rows if name.startswith(f"{journey}: ")]
        assert ran, f"the {journey!r} journey sent nothing: {sorted(rows)}"
    assert "admin: restock" in rows
    assert (tmp_path / "load.html").stat().st_size > 0
    # The gateway names the source on the access log line of every request the load sent.
    log = load_platform.log()
    assert '"synthetic": "load"' in log or '"synthetic":"load"' in log
