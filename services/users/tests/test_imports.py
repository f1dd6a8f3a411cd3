"""users is a sync service: its image has no greenlet, so nothing it imports may need it."""

import subprocess
import sys

# What the app factory, its resources and the CLI import, with greenlet made unimportable.
PROGRAM = """
import sys
sys.modules["greenlet"] = None
import shopstack_users.main, shopstack_users.cli, shopstack_users.resources
assert "sqlalchemy.ext.asyncio" not in sys.modules, "sqlalchemy.ext.asyncio was imported"
"""


def test_users_starts_without_greenlet() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_app_does_not_load_alembic() -> None:
    """Alembic, Mako and Pygments are about 9 MiB of every worker's RSS; only `migrate`
    needs them."""
    program = "import sys, shopstack_users.main; assert 'alembic' not in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
