"""What the rehearsal models is listed field by field; the rest is reported by name."""

import textwrap
from pathlib import Path

import pytest

from shopstack_rehearse.coverage import markdown_table, survey
from shopstack_rehearse.manifests import parse_stream


def findings(text: str, allowed: tuple[str, ...] = ()) -> list[tuple[str, str, bool]]:
    manifests = parse_stream(textwrap.dedent(text), "shop")
    return [(f.ref, f.path, f.fatal) for f in survey(manifests, allowed)]


MANIFESTS = Path(__file__).parent / "manifests"
POD = (MANIFESTS / "coverage-pod.yaml").read_text()


def test_a_modelled_deployment_reports_only_the_accepted_fields() -> None:
    assert findings(POD.replace("EXTRA", "")) == [
        ("Deployment/shop/web", "spec.template.spec.affinity", False),
        ("Deployment/shop/web", "spec.template.spec.containers[0].resources.requests", False),
    ]


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("startupProbe: {grpc: {port: 1}}", "spec.template.spec.containers[0].startupProbe.grpc"),
        (
            "lifecycle: {postStart: {exec: {command: [x]}}}",
            "spec.template.spec.containers[0].lifecycle.postStart",
        ),
        ("someNewField: true", "spec.template.spec.containers[0].someNewField"),
        (
            "resources: {limits: {nvidia.com/gpu: 1}}",
            "spec.template.spec.containers[0].resources.limits.nvidia.com/gpu",
        ),
    ],
)
def test_an_unmodelled_field_is_fatal_and_named(extra: str, path: str) -> None:
    text = POD.replace("EXTRA", extra)
    if extra.startswith("resources"):
        text = text.replace(
            "          resources: {requests: {cpu: 1}, limits: {memory: 1Gi}}\n", ""
        )
    assert ("Deployment/shop/web", path, True) in findings(text)


def test_an_unknown_kind_is_fatal_and_a_known_ignored_kind_is_listed() -> None:
    result = findings("""
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly}
        spec: {schedule: "@daily"}
        ---
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: web}
        spec: {minReplicas: 2}
    """)
    assert result == [
        ("CronJob/shop/nightly", "", True),
        ("HorizontalPodAutoscaler/shop/web", "", False),
    ]


def test_an_allowed_finding_is_downgraded() -> None:
    text = """
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly}
    """
    assert findings(text, ("CronJob",)) == [("CronJob/shop/nightly", "", False)]


def test_an_ingress_nginx_annotation_the_config_does_not_honour_is_fatal() -> None:
    result = findings("""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: edge
          annotations:
            nginx.ingress.kubernetes.io/proxy-body-size: 8m
            nginx.ingress.kubernetes.io/rewrite-target: /
            cert-manager.io/cluster-issuer: letsencrypt
        spec: {rules: []}
    """)
    assert result == [
        (
            "Ingress/shop/edge",
            "metadata.annotations[nginx.ingress.kubernetes.io/rewrite-target]",
            True,
        )
    ]


def test_fields_md_lists_what_the_code_models() -> None:
    fields = Path(__file__).parents[1] / "FIELDS.md"
    assert fields.read_text().endswith(markdown_table()), "regenerate: shopstack-rehearse fields"
