"""The deliberate breaks of a deploy: each fails the run with a message naming the object."""

from pathlib import Path

import pytest

from shopstack_rehearse.engine import RehearsalError

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
SERVICE = (MANIFESTS / "breaks-service.yaml").read_text()


def variant(
    db_key: str = "url",
    probe_port: str = "http",
    fs_group: str = "fsGroup: 10001",
    user: str = "10001",
) -> str:
    return (
        SERVICE.replace("DB_KEY", db_key)
        .replace("PROBE_PORT", probe_port)
        .replace("FS_GROUP", fs_group)
        .replace("runAsUser: 10001", f"runAsUser: {user}")
    )


def test_the_unbroken_service_starts(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    cluster.install(render(variant()))
    assert [p.ready for p in cluster.pods("Deployment/shop/users")] == [True]


BREAKS = {
    "an env var naming a missing Secret key": (
        {"db_key": "database-url"},
        r"Deployment/shop/users pod users-\S+ container 'users': env DATABASE_URL: "
        r"Secret shop/database has no key 'database-url'",
    ),
    "a probe on the wrong port": (
        {"probe_port": "9090"},
        r"(?s)timed out after 20s waiting for Deployment/shop/users:.*container users: not ready.*"
        r"readiness: HTTP GET \S+:9090/readyz: \[Errno 111\] Connection refused",
    ),
    "a probe on a named port the container lacks": (
        {"probe_port": "metrics"},
        r"Deployment/shop/users pod users-\S+ container 'users': readinessProbe httpGet: "
        r"port 'metrics' is not a named port of the container",
    ),
    "a 0400 key without fsGroup, read by a non-root user": (
        {"fs_group": "supplementalGroups: []"},
        r"(?s)Deployment/shop/users pod users-\S+ container 'users' restarted 3 times "
        r"without becoming ready.*"
        r"PermissionError: \[Errno 13\] Permission denied: '/keys/2026-01.pem'",
    ),
    "root where runAsNonRoot is asked": (
        {"user": "0"},
        r"Deployment/shop/users pod users-\S+ container 'users': runAsNonRoot and runAsUser is 0",
    ),
}


@pytest.mark.parametrize("name", BREAKS)
def test_a_break_fails_the_run_naming_the_object(rehearsal, render, name: str) -> None:  # type: ignore[no-untyped-def]
    change, message = BREAKS[name]
    # Only the never-ready pod needs the timeout; the others fail on their own.
    cluster = rehearsal(timeout=20 if "timed out" in message else 120)
    with pytest.raises(RehearsalError, match=message):
        cluster.install(render(variant(**change)))


def test_an_unmodelled_kind_is_refused_before_anything_runs(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cronjob = (
        variant()
        + """
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec: {schedule: "@daily", jobTemplate: {spec: {template: {spec: {containers: []}}}}}
"""
    )
    cluster = rehearsal()
    with pytest.raises(
        RehearsalError, match=r"CronJob/shop/nightly: kind not modelled by the rehearsal"
    ):
        cluster.install(render(cronjob))
    assert cluster.pods() == []
