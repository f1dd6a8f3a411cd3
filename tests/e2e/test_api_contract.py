"""The API contract, fuzzed: ``schemathesis run`` over the gateway's merged OpenAPI document,
through NGINX on a running ``make up``, as a customer and as an administrator.

Every default check and every phase (examples, coverage, fuzzing, and the stateful phase
along the documents' links) run; the bar is 0 failures. The only refusals accepted are the
ones no schema can know of (``contract/contract_hooks.py`` says which). Rate limits are
raised for the run through the gateway's settings, as an operator would; nothing in the
services knows it is being fuzzed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shopstack_devstack.paths import REPO_ROOT
from tests.e2e.conftest import LocalPlatform, _platform

pytestmark = [pytest.mark.e2e, pytest.mark.contract]

HOOKS = Path(__file__).with_name("contract")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
OUTPUT = Path(os.environ.get("SHOPSTACK_TEST_OUTPUT", REPO_ROOT / "test-results")) / "contract"
# Reproducible: the same cases on every run; change it (or SHOPSTACK_CONTRACT_SEED) to look
# elsewhere. schemathesis' own default is 100 examples per operation and phase.
SEED = os.environ.get("SHOPSTACK_CONTRACT_SEED", "20261201")
MAX_EXAMPLES = os.environ.get("SHOPSTACK_CONTRACT_MAX_EXAMPLES", "25")
# A fuzzer sends thousands of requests from one address; the limits say so, per policy.
GENEROUS_LIMITS = {
    f"GATEWAY_RATE_LIMIT__{policy}__LIMIT": "1000000" for policy in ("ADDRESS", "USER", "TOKEN")
}
DEV_ADMIN = ("admin@shopstack.local", "shopstack-dev-admin")
OPERATIONS = re.compile(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)")
CASES = re.compile(r"(\d+) generated, (\d+) passed")
LINKS = re.compile(r"API Links:\s+(\d+) covered")


def _numbers(pattern: re.Pattern[str], summary: str) -> list[int]:
    found = pattern.search(summary)
    assert found is not None, f"no {pattern.pattern!r} in:\n{summary}"
    return [int(group) for group in found.groups()]


@pytest.fixture(scope="module")
def contract_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    for stack in _platform(tmp_path_factory.mktemp("devstack"), extra_env=GENEROUS_LIMITS):
        stack.start()
        yield stack
        assert stack.stop() == 0, stack.log()[-4000:]


def _token(url: str, email: str, password: str) -> str:
    answer = httpx.post(
        f"{url}/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _customer_token(url: str) -> str:
    email, password = f"contract-{uuid.uuid4().hex[:8]}@example.com", "fuzzing is a contract"
    registered = httpx.post(
        f"{url}/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": "Contract Customer"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    return _token(url, email, password)


@pytest.mark.parametrize("caller", ["customer", "administrator"])
def test_schemathesis_finds_nothing_through_nginx(
    contract_platform: LocalPlatform, caller: str
) -> None:
    url = contract_platform.url
    token = _customer_token(url) if caller == "customer" else _token(url, *DEV_ADMIN)
    report = OUTPUT / caller
    env = dict(os.environ, SCHEMATHESIS_HOOKS="contract_hooks")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOKS), env.get("PYTHONPATH")]))
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(HOOKS / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--seed",
        SEED,
        "--max-examples",
        MAX_EXAMPLES,
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(report),
    ]
    run = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=1200
    )
    print(f"schemathesis as {caller}:\n{run.stdout}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-4000:]
    summary = run.stdout
    # Every operation of the merged document was tested, by every phase that has cases to run
    # (the documents carry no examples), the stateful one along the links.
    selected, total, tested = _numbers(OPERATIONS, summary)
    assert selected == total == tested >= 20, summary
    generated, passed = _numbers(CASES, summary)
    assert generated == passed > 0, summary
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    (covered,) = _numbers(LINKS, summary)
    assert covered > 0, summary
