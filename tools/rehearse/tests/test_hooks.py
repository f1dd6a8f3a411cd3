"""Helm's order: pre-install hooks by weight, each succeeding, then the workloads, then
post-install hooks, and the test hooks last; failures stop the run naming the Job."""

from pathlib import Path

import pytest

from shopstack_rehearse.engine import RehearsalError

pytestmark = pytest.mark.rehearse

MANIFESTS = Path(__file__).parent / "manifests"
RELEASE = (MANIFESTS / "hooks-release.yaml").read_text()


def test_hooks_run_in_weight_order_around_the_workloads(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    cluster = rehearsal()
    manifests = render(RELEASE)
    cluster.install(manifests)
    assert [(run.phase, run.ref) for run in cluster.hook_runs] == [
        ("pre-install", "Secret/shop/generated"),
        ("pre-install", "Job/shop/migrate-first"),
        ("pre-install", "Job/shop/migrate-second"),
        ("post-install", "Job/shop/after"),
    ]
    # post-install ran against a ready workload: its fetch through the Service succeeded.
    assert cluster.hook_runs[-1].outcome == "Job/shop/after: succeeded"
    tests = cluster.test(manifests)
    assert [(run.ref, run.outcome) for run in tests] == [
        ("Pod/shop/release-test", "Pod/shop/release-test: succeeded")
    ]


def test_a_failing_hook_is_retried_to_its_backoff_limit_and_stops_the_install(
    rehearsal, render
) -> None:  # type: ignore[no-untyped-def]
    failing = RELEASE.replace(
        'args: [exit, "0"]\n          env', 'args: [exit, "3"]\n          env'
    ).replace("backoffLimit: 0", "backoffLimit: 1")
    cluster = rehearsal()
    with pytest.raises(
        RehearsalError,
        match=r"pre-install hook Job/shop/migrate-second: failed 2 time\(s\), backoffLimit 1",
    ) as error:
        cluster.install(render(failing))
    assert "exiting 3" in str(error.value)
    assert cluster.controllers == {}  # nothing after the failed hook was created


def test_a_hook_past_its_deadline_fails(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    slow = RELEASE.replace(
        "  backoffLimit: 0\n", "  backoffLimit: 0\n  activeDeadlineSeconds: 2\n"
    ).replace("env: [{name: TOKEN,", "env: [{name: SLEEP, value: '60'}, {name: TOKEN,")
    cluster = rehearsal()
    with pytest.raises(RehearsalError, match=r"Job/shop/migrate-second: DeadlineExceeded"):
        cluster.install(render(slow))


def test_a_hook_secret_deleted_on_success_is_gone_for_the_workloads(rehearsal, render) -> None:  # type: ignore[no-untyped-def]
    deleted = RELEASE.replace(
        'helm.sh/hook-weight: "-10"}',
        'helm.sh/hook-weight: "-10", helm.sh/hook-delete-policy: hook-succeeded}',
    ).replace(
        "          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}\n",
        "          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}\n"
        "          env:\n"
        "            - {name: TOKEN, valueFrom: {secretKeyRef: {name: generated, key: token}}}\n",
    )
    cluster = rehearsal()
    with pytest.raises(
        RehearsalError,
        match=r"(?s)Deployment/shop/web pod web-\S+: "
        r".*env TOKEN: Secret shop/generated does not exist",
    ):
        cluster.install(render(deleted))
