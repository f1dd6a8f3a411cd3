"""Where the repository is: the devstack runs from a checkout, never from an installed copy."""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    configured = os.environ.get("SHOPSTACK_ROOT")
    if configured:
        return Path(configured).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "deploy" / "nginx").is_dir() and (parent / "services").is_dir():
            return parent
    return Path.cwd()


REPO_ROOT = _find_root()
