"""Compiled bytecode for what `make up` starts, so that no process compiles its modules again.

uv installs without compiling (``uv sync`` leaves it to the first import), and where
``PYTHONDONTWRITEBYTECODE`` is set the first import never writes the result: every start of
every process then compiled each module it imports from source, about half of each
service's start-up CPU (users' app imported in 3.1 s of CPU from source, 1.5 s from
bytecode). The images compile at build time (``UV_COMPILE_BYTECODE``); this does the same
for a checkout. Sources changed since are compiled again, as an import would.
"""

from __future__ import annotations

import compileall
import importlib.util
import sysconfig
from pathlib import Path

from shopstack_devstack.paths import REPO_ROOT

# Imported by every service; without its bytecode the installed packages were never compiled.
_PROBE = "sqlalchemy"


def installed_packages_compiled() -> bool:
    spec = importlib.util.find_spec(_PROBE)
    if spec is None or spec.origin is None:
        return True  # nothing to tell by: leave the packages alone
    return Path(importlib.util.cache_from_source(spec.origin)).exists()


def workspace_sources(root: Path = REPO_ROOT) -> list[Path]:
    return sorted(path for pattern in ("libs/*/src", "services/*/src", "tools/*/src")
                  for path in root.glob(pattern))  # fmt: skip


def compile_all(*, packages: bool, root: Path = REPO_ROOT) -> None:
    """Compile the workspace's sources (a look at each file when they are compiled already)
    and, with ``packages``, every installed package (once: that takes a while)."""
    directories = workspace_sources(root)
    if packages:
        paths = sysconfig.get_paths()
        directories += sorted({Path(paths["purelib"]), Path(paths["platlib"])})
    for directory in directories:
        # quiet=2: a package's deliberately broken test file is not ours to report.
        compileall.compile_dir(directory, quiet=2, workers=0 if packages else 1)
