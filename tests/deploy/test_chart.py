"""The Helm chart: lint, render, the Kubernetes schemas, and the rules the chart promises."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from .conftest import CHART, Render, run_helm

pytestmark = pytest.mark.deploy

VALUES_FILES = ["default-values.yaml", "full-values.yaml"]
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBERNETES_VERSIONS = ["1.27.0", "1.34.0"]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_lint_strict_passes(helm: Path, values: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", VALUES_FILES)
def test_rendered_manifests_match_the_kubernetes_schemas(
    render: Render, values: str, version: str
) -> None:
    docs = render(values)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("missing", "message"),
    [("database.existingSecret", "database.existingSecret is required"),
     ("redis.existingSecret", "redis.existingSecret is required"),
     ("users.signingKeysSecret", "users.signingKeysSecret is required")],
)  # fmt: skip
def test_a_missing_secret_fails_with_the_setting_to_fix(
    helm: Path, missing: str, message: str
) -> None:
    result = run_helm(
        helm, "template", "shop", str(CHART), "-f", str(CHART / "ci" / "default-values.yaml"),
        "--set", f"{missing}=",
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    "setting",
    ["users.replicas=-1", "environment=staging", "ingress.maxBodySize=lots", "unknownKey=1"],
)
def test_the_schema_rejects_bad_values(helm: Path, setting: str) -> None:
    result = run_helm(
        helm, "template", "shop", str(CHART), "-f", str(CHART / "ci" / "default-values.yaml"),
        "--set", setting,
    )  # fmt: skip
    assert result.returncode != 0
    assert "schema" in result.stderr


def test_every_container_runs_under_the_restricted_profile(render: Render) -> None:
    workloads = [d for d in render("full-values.yaml") if d["kind"] in {"Deployment", "Job"}]
    assert {d["kind"] for d in workloads} == {"Deployment", "Job"}
    for doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["seccompProfile"]["type"] == "RuntimeDefault"
            assert "memory" in container["resources"]["limits"]


def test_deployments_select_their_own_pods_by_name_instance_and_component(
    render: Render,
) -> None:
    deployments = [d for d in render("default-values.yaml") if d["kind"] == "Deployment"]
    services = {
        d["metadata"]["name"]: d for d in render("default-values.yaml") if d["kind"] == "Service"
    }
    assert {d["metadata"]["name"] for d in deployments} == {
        "shop-shopstack-users", "shop-shopstack-orders", "shop-shopstack-gateway",
    }  # fmt: skip
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert set(selector) == {
            "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
        }  # fmt: skip
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        service = services[deployment["metadata"]["name"]]
        assert service["spec"]["selector"] == selector
        (container,) = containers(deployment)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_migrations_run_as_a_hook_before_install_and_upgrade(render: Render) -> None:
    jobs = [d for d in render("default-values.yaml") if d["kind"] == "Job"]
    assert sorted(j["metadata"]["name"] for j in jobs) == [
        "shop-shopstack-migrate-orders", "shop-shopstack-migrate-users",
    ]  # fmt: skip
    for job in jobs:
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert containers(job)[0]["args"] == ["migrate"]
    assert not [
        d for d in render("default-values.yaml", migrations__enabled="false") if d["kind"] == "Job"
    ]


def test_the_gateway_is_the_only_way_in(render: Render) -> None:
    (ingress,) = [d for d in render("full-values.yaml") if d["kind"] == "Ingress"]
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"shop-shopstack-gateway"}
    assert ingress["spec"]["tls"][0]["secretName"] == "shopstack-tls"


def test_image_references(render: Render) -> None:
    def images(docs: list[dict[str, Any]]) -> dict[str, str]:
        return {
            d["metadata"]["name"]: containers(d)[0]["image"]
            for d in docs
            if d["kind"] == "Deployment"
        }

    assert images(render("default-values.yaml"))["shop-shopstack-users"] == "shopstack/users:0.1.0"
    full = images(render("full-values.yaml"))
    assert full["shop-shopstack-orders"] == "registry.example.com/shopstack/orders:1.2.3"
    pinned = images(render("default-values.yaml", gateway__image="example/gw@sha256:abc"))
    assert pinned["shop-shopstack-gateway"] == "example/gw@sha256:abc"


def test_users_signs_with_the_mounted_keys_and_bootstraps_the_admin(render: Render) -> None:
    docs = render("full-values.yaml")
    (users,) = [
        d
        for d in docs
        if d["metadata"]["name"] == "shop-shopstack-users" and d["kind"] == "Deployment"
    ]
    (container,) = containers(users)
    env = {e["name"]: e for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "signing-keys")
    assert env["JWT_SIGNING_KEYS_DIR"]["value"] == mount["mountPath"]
    assert mount["readOnly"] is True
    volume = next(
        v for v in users["spec"]["template"]["spec"]["volumes"] if v["name"] == "signing-keys"
    )
    assert volume["secret"]["secretName"] == "shopstack-signing-keys"
    (migrate,) = [d for d in docs if d["metadata"]["name"] == "shop-shopstack-migrate-users"]
    job_env = {e["name"]: e for e in containers(migrate)[0]["env"]}
    assert job_env["SHOPSTACK_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "shopstack-admin", "key": "password",
    }  # fmt: skip
    # Only users holds signing keys or admin credentials.
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"} and "users" not in doc["metadata"]["name"]:
            names = {e["name"] for e in containers(doc)[0]["env"]}
            assert not names & {"JWT_SIGNING_KEYS_DIR", "SHOPSTACK_ADMIN_PASSWORD"}
