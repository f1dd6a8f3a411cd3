"""Secret and ConfigMap volumes written the way the kubelet writes them.

The kubelet's AtomicWriter keeps the payload in a timestamped directory, points ``..data``
at it and makes each top-level name a symlink through ``..data``; an update writes a new
directory and renames a new ``..data`` link over the old one, so a reader sees the old set
or the new set, never a mix. With an ``fsGroup`` the kubelet then gives every file that
group and group read (``SetVolumeOwnership``: mode | 0440 for a read-only volume, plus
setgid and group execute on directories); without one the files stay root's.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DEFAULT_MODE = 0o644
READ_ONLY_MASK = 0o440
DIR_MASK = 0o2000 | 0o110


class ProjectionError(ValueError):
    pass


@dataclass(frozen=True)
class ProjectedFile:
    path: str
    data: bytes
    mode: int


def files_for(
    data: dict[str, bytes], items: list[dict[str, object]] | None, default_mode: int | None
) -> list[ProjectedFile]:
    """The files a volume holds: every key, or only ``items`` (each with its own mode).

    A missing key named in ``items`` is an error, as the kubelet makes it."""
    mode = DEFAULT_MODE if default_mode is None else default_mode
    if not items:
        return [ProjectedFile(key, value, mode) for key, value in sorted(data.items())]
    files = []
    for item in items:
        key = str(item["key"])
        if key not in data:
            raise ProjectionError(f"key {key!r} is not in it")
        path = str(item["path"])
        if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
            raise ProjectionError(f"item path {path!r} must be relative and stay inside")
        item_mode = item.get("mode")
        files.append(
            ProjectedFile(path, data[key], mode if item_mode is None else int(str(item_mode)))
        )
    return files


def write_atomically(directory: Path, files: list[ProjectedFile], fs_group: int | None) -> None:
    """Write (or replace) the volume's payload in ``directory`` as the AtomicWriter does."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
    payload = directory / stamp
    payload.mkdir(mode=0o755)
    for item in files:
        target = payload / item.path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(item.data)
        os.chmod(target, item.mode)
    if fs_group is not None:
        _apply_ownership(payload, fs_group)
    previous = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    link = directory / "..data_tmp"
    if link.is_symlink():
        link.unlink()
    os.symlink(stamp, link)
    os.rename(link, directory / "..data")
    wanted = {PurePosixPath(item.path).parts[0] for item in files}
    for name in wanted:
        entry = directory / name
        if not entry.is_symlink():
            os.symlink(f"..data/{name}", entry)
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted and entry.is_symlink():
            entry.unlink()
    if previous and previous != stamp:
        shutil.rmtree(directory / previous, ignore_errors=True)


def _apply_ownership(root: Path, fs_group: int) -> None:
    for current, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            _own(Path(current) / name, fs_group)
    _own(root, fs_group)


def _own(path: Path, fs_group: int) -> None:
    info = path.lstat()
    if path.is_symlink():
        return
    try:
        os.chown(path, -1, fs_group)
    except PermissionError as error:
        raise ProjectionError(
            "fsGroup ownership needs the rehearsal to run as root, as the kubelet does"
        ) from error
    mask = READ_ONLY_MASK | (DIR_MASK if path.is_dir() else 0)
    os.chmod(path, (info.st_mode & 0o7777) | mask)
