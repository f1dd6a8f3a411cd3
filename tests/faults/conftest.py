"""The platform the fault suite breaks: `make up` on free ports with two gateway instances,
short upstream read timeouts (so a stopped upstream is a timeout within the run) and no rate
limits (the load is one client address)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopstack_devstack.local_platform import LocalPlatform
from shopstack_devstack.ports import free_port

RESULTS = Path(__file__).resolve().parents[2] / "test-results" / "faults"
# Filled by the tests, printed and written at the end of the run.
FAULT_TABLE: list[dict[str, object]] = []
UPSTREAM_READ_TIMEOUT_SECONDS = 2


def pid_of(platform: LocalPlatform, name: str) -> int:
    """The process group of a child of the platform, from the supervisor's pid file (it is
    rewritten when the child is restarted)."""
    record = json.loads((platform.data_dir / "run" / f"{name}.pid").read_text())
    return int(record["pgid"])


def signal_child(platform: LocalPlatform, name: str, sig: signal.Signals) -> None:
    os.killpg(pid_of(platform, name), sig)


@pytest.fixture(scope="session")
def faulty_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    names = ("nginx", "gateway", "gateway_extra", "users", "orders", "postgres", "redis")
    ports = {name: free_port() for name in names}
    timeout = str(UPSTREAM_READ_TIMEOUT_SECONDS)
    stack = LocalPlatform(
        data_dir=tmp_path_factory.mktemp("devstack"),
        ports=ports,
        extra_env={
            "SHOPSTACK_GATEWAY_INSTANCES": "2",
            "GATEWAY_RATE_LIMIT__ENABLED": "false",
            "GATEWAY_UPSTREAMS__ORDERS__READ_TIMEOUT_SECONDS": timeout,
            "GATEWAY_UPSTREAMS__USERS__READ_TIMEOUT_SECONDS": timeout,
        },
    )
    stack.start()
    yield stack
    code = stack.stop()
    (RESULTS / "platform.log").parent.mkdir(parents=True, exist_ok=True)
    (RESULTS / "platform.log").write_text(stack.log())
    assert code == 0, stack.log()[-4000:]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FAULT_TABLE:
        return
    statuses = sorted({s for row in FAULT_TABLE for s in row["statuses"]})  # type: ignore[attr-defined]
    header = ["fault", "sent", *(str(s) if s else "no answer" for s in statuses), "recovery s"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for row in FAULT_TABLE:
        counts = row["statuses"]
        cells = [str(row["fault"]), str(row["sent"])]
        cells += [str(counts.get(s, 0)) for s in statuses]  # type: ignore[attr-defined]
        cells.append(f"{row['recovery']:.1f}")
        lines.append(" | ".join(cells))
    table = "\n".join(f"| {line} |" for line in lines)
    terminalreporter.write_sep("=", "faults: answers by status, recovery after the fault ended")
    terminalreporter.write_line(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults.md").write_text(table + "\n")
