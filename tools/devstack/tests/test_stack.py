import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shopstack_devstack.ports import free_port
from shopstack_devstack.stack import StartupError, check_postgres, check_redis


def test_a_dead_database_url_is_one_line_before_any_migration(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTACK_")}
    env |= {
        "DATABASE_URL": f"postgresql://shop:secret@127.0.0.1:{port}/shopstack",
        "SHOPSTACK_DATA_DIR": str(tmp_path / "devstack"),
        "SHOPSTACK_LOG_FORMAT": "pretty",
    }
    for name in ("nginx", "gateway", "users", "orders", "redis"):
        env[f"SHOPSTACK_{name.upper()}_PORT"] = str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "shopstack_devstack", "up"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    # The name column is as wide as the longest process name.
    assert [re.sub(r"^(\S+) +\| ", r"\1 | ", line) for line in result.stdout.splitlines()] == [
        "devstack | could not start: cannot connect to "
        f"postgresql://shop:***@127.0.0.1:{port}/shopstack: connection refused",
        "devstack | stopped",
    ]
    assert "secret" not in result.stdout + result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("check", "url", "message"),
    [
        (check_redis, "redis://:secret@127.0.0.1:{port}/0",
         "cannot connect to redis://:***@127.0.0.1:{port}/0: connection refused"),
        (check_postgres, "postgresql://u:secret@127.0.0.1:{port}/db",
         "cannot connect to postgresql://u:***@127.0.0.1:{port}/db: connection refused"),
        (check_postgres, "postgresql://u:secret@host.invalid:5432/db",
         "cannot connect to postgresql://u:***@host.invalid:5432/db: "
         "failed to resolve host 'host.invalid'"),
        (check_redis, "http://u:secret@127.0.0.1:{port}/0",
         "cannot connect to http://u:***@127.0.0.1:{port}/0: redis URL must specify"),
    ],
)  # fmt: skip
def test_a_bad_url_is_named_masked_with_its_reason(check, url: str, message: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with pytest.raises(StartupError) as raised:
        check(url.format(port=port))
    assert str(raised.value).startswith(message.format(port=port))
    assert "secret" not in str(raised.value)
    assert "\n" not in str(raised.value)
