"""Secret and ConfigMap volumes as the kubelet writes them."""

import os
from pathlib import Path

import pytest

from shopstack_rehearse.projection import ProjectionError, files_for, write_atomically


def test_items_modes_and_the_atomic_layout(tmp_path: Path) -> None:
    files = files_for(
        {"a.pem": b"A", "b": b"B"}, [{"key": "a.pem", "path": "keys/a.pem", "mode": 0o400}], 0o644
    )
    write_atomically(tmp_path, files, fs_group=None)
    assert (tmp_path / "..data").is_symlink()
    assert os.readlink(tmp_path / "keys") == "..data/keys"
    assert (tmp_path / "keys" / "a.pem").read_bytes() == b"A"
    assert (tmp_path / "keys" / "a.pem").stat().st_mode & 0o777 == 0o400
    assert not (tmp_path / "b").exists()


def test_fs_group_gives_group_read_as_the_kubelet_does(tmp_path: Path) -> None:
    write_atomically(tmp_path, files_for({"k": b"x"}, None, 0o400), fs_group=2000)
    info = (tmp_path / "k").stat()
    assert (info.st_gid, info.st_mode & 0o777) == (2000, 0o440)


def test_an_update_swaps_every_file_at_once_and_removes_the_old_payload(tmp_path: Path) -> None:
    write_atomically(tmp_path, files_for({"old": b"1"}, None, None), None)
    first = os.readlink(tmp_path / "..data")
    write_atomically(tmp_path, files_for({"old": b"2", "new": b"3"}, None, None), None)
    assert os.readlink(tmp_path / "..data") != first
    assert not (tmp_path / first).exists()
    assert ((tmp_path / "old").read_bytes(), (tmp_path / "new").read_bytes()) == (b"2", b"3")


def test_an_item_naming_a_missing_key_is_an_error() -> None:
    with pytest.raises(ProjectionError, match="key 'nope' is not in it"):
        files_for({"k": b"x"}, [{"key": "nope", "path": "p"}], None)
