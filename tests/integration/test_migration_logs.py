"""`migrate` says one line per migration it applies, in both services, and nothing else."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shopstack_devstack.backends import Servers

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def migrate(service: str, database_url: str, redis_url: str) -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTACK_")}
    env |= {"ENVIRONMENT": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    result = subprocess.run(
        [sys.executable, "-m", f"shopstack_{service}", "migrate"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("service", ["users", "orders"])
def test_one_line_per_migration_applied(
    service: str, empty_database: str, test_servers: Servers
) -> None:
    versions = REPO / "services" / service / "src" / f"shopstack_{service}" / "migrations"
    count = len(list((versions / "versions").glob("0*.py")))
    lines = migrate(service, empty_database, test_servers.redis_url)
    alembic = [line for line in lines if str(line["logger"]).startswith("alembic")]
    assert len(alembic) == count, alembic
    assert all(str(line["message"]).startswith("Running upgrade") for line in alembic)
    assert all(line["service"] == service for line in lines)
    # A second run has nothing to apply, and says nothing of Alembic.
    again = migrate(service, empty_database, test_servers.redis_url)
    assert [line for line in again if str(line["logger"]).startswith("alembic")] == []
