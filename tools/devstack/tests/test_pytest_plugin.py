"""Test processes sharing one Redis at once (the mutation runs) each hold a database of their
own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shopstack_devstack.pytest_plugin import REDIS_SLOTS, _locked_redis_slot


def test_two_holders_get_two_databases_and_a_released_one_is_taken_again(tmp_path: Path) -> None:
    with _locked_redis_slot(tmp_path) as first, _locked_redis_slot(tmp_path) as second:
        assert first != second
        assert {first, second} <= set(REDIS_SLOTS)
    with _locked_redis_slot(tmp_path) as again:
        assert again == first


def test_a_database_held_by_another_process_is_not_handed_out(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from shopstack_devstack.pytest_plugin import _locked_redis_slot\n"
            f"with _locked_redis_slot(Path({str(tmp_path)!r})) as slot:\n"
            "    print(slot, flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        with _locked_redis_slot(tmp_path) as mine:
            assert mine != held
    finally:
        holder.communicate("", timeout=30)
