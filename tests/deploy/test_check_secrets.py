"""`make deploy`'s check that the Secrets production values name exist, against a stand-in
kubectl that knows a given set of Secrets (no cluster can be had here)."""

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CHART, NAMESPACE, REPO, VALUES

pytestmark = pytest.mark.deploy

CHECK = REPO / "tools" / "k8s" / "check-secrets"


def fake_kubectl(directory: Path, present: set[str]) -> Path:
    """`kubectl get secret NAME ...` answers as a cluster holding ``present`` would."""
    script = directory / "kubectl"
    names = " ".join(sorted(present))
    script.write_text(
        "#!/bin/sh\n"
        f'for known in {names}; do [ "$3" = "$known" ] && echo "secret/$3" && exit 0; done\n'
        'echo "Error from server (NotFound): secrets \\"$3\\" not found" >&2; exit 1\n'
    )
    script.chmod(0o755)
    return script


def check(helm: Path, kubectl: Path, values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(CHECK),
            str(helm),
            str(kubectl),
            str(CHART),
            "shop",
            NAMESPACE,
            "-f",
            str(VALUES[values]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_names_every_missing_secret_and_who_reads_it(helm: Path, tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path, {"shopstack-database"})
    result = check(helm, kubectl, "production")
    assert result.returncode == 1
    for missing in ("shopstack-redis", "shopstack-signing-keys", "shopstack-admin"):
        assert f"missing Secret {NAMESPACE}/{missing}" in result.stderr
    assert "missing Secret shopstack/shopstack-database" not in result.stderr
    assert "Deployment/shop-shopstack-users volume signing-keys" in result.stderr
    assert "Job/shop-shopstack-users-migrate env SHOPSTACK_ADMIN_PASSWORD" in result.stderr


def test_production_with_every_secret_passes(helm: Path, tmp_path: Path) -> None:
    present = {"shopstack-database", "shopstack-redis", "shopstack-signing-keys", "shopstack-admin"}
    result = check(helm, fake_kubectl(tmp_path, present), "production")
    assert result.returncode == 0, result.stderr
    assert "4 made beforehand" in result.stdout


def test_dev_mode_needs_nothing_made_beforehand(helm: Path, tmp_path: Path) -> None:
    result = check(helm, fake_kubectl(tmp_path, set()), "dev")
    assert result.returncode == 0, result.stderr
    assert "0 made beforehand" in result.stdout
