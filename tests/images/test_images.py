"""Every service image, run the way the chart runs it.

For the production values (external PostgreSQL and Redis containers, Secrets made beforehand)
and for dev mode (the chart's own PostgreSQL and Redis StatefulSets and the Secrets it makes),
the pods come from ``helm template`` and run as the kubelet would run them (``kubelet.py``):
the data stores first, then the migration hook Jobs in weight order, each of which must
succeed, then the Deployments, until their readiness probes pass; then /healthz, /readyz and
/metrics answer, users signs with the mounted key, and the bootstrapped admin gets a token
through the gateway.

Needs a Docker engine and the images (``make test-images`` builds them first).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from docker.models.containers import Container
from docker.models.networks import Network

from tests.deploy.conftest import CHART, HELM, NAMESPACE, RELEASE, VALUES, run_helm
from tests.images.kubelet import WAIT_SECONDS, PodRunner, Rendered, host_port, wait_ready

pytestmark = pytest.mark.images

SERVICES = ("users", "orders", "gateway")
IMAGE_TAG = os.environ.get("IMAGE_TAG", "dev")
POSTGRES_IMAGE = os.environ.get("POSTGRES_IMAGE", "postgres:17")
REDIS_IMAGE = os.environ.get("REDIS_IMAGE", "redis:7")
KID = "2026-01-01"


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(
            f"the image test needs a Docker engine (make airgap-images starts one): {error}"
        )
    for service in SERVICES:
        try:
            client.images.get(f"shopstack/{service}:{IMAGE_TAG}")
        except docker.errors.ImageNotFound:
            pytest.fail(f"no image shopstack/{service}:{IMAGE_TAG}: run `make images` first")
    return client


def image_values(name: str, reference: str) -> dict[str, str]:
    repository, _, tag = reference.rpartition(":")
    return {
        f"{name}.image.registry": "",
        f"{name}.image.repository": repository,
        f"{name}.image.tag": tag,
    }


def render(values: str) -> list[dict[str, object]]:
    sets = {f"{s}.image.tag": IMAGE_TAG for s in SERVICES}
    sets |= image_values("postgresql", POSTGRES_IMAGE) | image_values("redis", REDIS_IMAGE)
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(VALUES[values])]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = run_helm(HELM, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def made_beforehand() -> dict[str, dict[str, bytes]]:
    """The Secrets production values name, as the platform team would make them."""
    key = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    return {
        "shopstack-database": {
            "database-url": b"postgresql://shopstack:shopstack@db:5432/shopstack"
        },
        "shopstack-redis": {"redis-url": b"redis://cache:6379/0"},
        "shopstack-signing-keys": {f"{KID}.pem": key},
        "shopstack-admin": {"email": b"admin@example.com", "password": b"a long admin passphrase"},
    }


def start_external_data_stores(engine: docker.DockerClient, network: Network) -> None:
    """What production values point at: a PostgreSQL and a Redis outside the release."""
    postgres = engine.containers.run(
        POSTGRES_IMAGE,
        detach=True,
        network=network.name,
        name=f"{network.name}-db",
        environment={
            "POSTGRES_USER": "shopstack",
            "POSTGRES_PASSWORD": "shopstack",
            "POSTGRES_DB": "shopstack",
        },
    )
    redis = engine.containers.run(
        REDIS_IMAGE, detach=True, network=network.name, name=f"{network.name}-cache"
    )
    for container, alias in ((postgres, "db"), (redis, "cache")):
        network.disconnect(container)
        network.connect(container, aliases=[alias])
    probe = ["pg_isready", "--host=127.0.0.1", "--username=shopstack", "--dbname=shopstack"]
    for container, command in ((postgres, probe), (redis, ["redis-cli", "ping"])):
        for _ in range(WAIT_SECONDS):
            if container.exec_run(command).exit_code == 0:
                break
            container.reload()
            assert container.status == "running", container.logs().decode(errors="replace")
            time.sleep(1)


@dataclass
class Platform:
    rendered: Rendered
    containers: dict[str, Container]

    def url(self, component: str, port: int = 8000) -> str:
        return f"http://127.0.0.1:{host_port(self.containers[component], port)}"


@pytest.fixture(scope="module", params=["production", "dev"])
def platform(
    request: pytest.FixtureRequest,
    engine: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    values: str = request.param
    network = engine.networks.create(f"shopstack-images-{uuid.uuid4().hex[:8]}")
    root = tmp_path_factory.mktemp(f"volumes-{values}")
    root.chmod(0o755)  # the containers' users must get to the mounts below
    rendered = Rendered(render(values), made_beforehand() if values == "production" else {})
    runner = PodRunner(engine, network, rendered, root)
    running: dict[str, Container] = {}
    try:
        if values == "production":
            start_external_data_stores(engine, network)
        for statefulset in rendered.of_kind("StatefulSet"):
            running[statefulset["metadata"]["name"]] = container = runner.run(statefulset)
            wait_ready(container, statefulset)
        jobs = sorted(
            rendered.of_kind("Job"),
            key=lambda j: int(j["metadata"]["annotations"]["helm.sh/hook-weight"]),
        )
        assert [j["metadata"]["name"] for j in jobs] == [
            f"{RELEASE}-shopstack-users-migrate",
            f"{RELEASE}-shopstack-orders-migrate",
        ]
        for job in jobs:
            migrate = runner.run(job)
            outcome = migrate.wait(timeout=WAIT_SECONDS)
            logs = migrate.logs().decode(errors="replace")
            assert outcome["StatusCode"] == 0, f"{job['metadata']['name']} failed:\n{logs}"
        for component in SERVICES:
            deployment = rendered.named("Deployment", f"{RELEASE}-shopstack-{component}")
            running[component] = container = runner.run(deployment)
            wait_ready(container, deployment)
        yield Platform(rendered, running)
    finally:
        network.reload()
        for container in network.containers:
            container.remove(force=True)
        for leftover in engine.containers.list(all=True, filters={"name": network.name}):
            leftover.remove(force=True)
        network.remove()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("component", SERVICES)
def test_the_image_serves_under_the_charts_pod_spec(platform: Platform, component: str) -> None:
    for path in ("/healthz", "/readyz"):
        response = httpx.get(f"{platform.url(component)}{path}", timeout=5)
        assert response.status_code == 200, response.text
    metrics = httpx.get(f"{platform.url(component, 9090)}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "# HELP" in metrics.text
    container = platform.containers[component]
    container.reload()
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert container.attrs["Config"]["User"] == "10001:10001"


def test_users_signs_with_the_mounted_keys(platform: Platform) -> None:
    jwks = httpx.get(f"{platform.url('users')}/.well-known/jwks.json", timeout=5).json()
    users = platform.rendered.named("Deployment", f"{RELEASE}-shopstack-users")
    volumes = {v["name"]: v for v in users["spec"]["template"]["spec"]["volumes"]}
    keys = platform.rendered.secret(volumes["signing-keys"]["secret"]["secretName"])
    kids = [name.removesuffix(".pem") for name in keys]
    assert [key["kid"] for key in jwks["keys"]] == kids


def test_the_migration_bootstrapped_the_admin_who_signs_in_through_the_gateway(
    platform: Platform,
) -> None:
    job = platform.rendered.named("Job", f"{RELEASE}-shopstack-users-migrate")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    admin = platform.rendered.secret(
        env["SHOPSTACK_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    )
    token = httpx.post(
        f"{platform.url('gateway')}/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": admin["email"].decode(),
            "password": admin["password"].decode(),
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{platform.url('gateway')}/api/v1/users/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text
    assert "admin" in me.json()["roles"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_runtime_has_no_build_tools_and_carries_its_labels(
    engine: docker.DockerClient, service: str
) -> None:
    image = engine.images.get(f"shopstack/{service}:{IMAGE_TAG}")
    for label in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{label}" in image.labels
    assert image.attrs["Config"]["User"] == "10001:10001"
    found = engine.containers.run(
        image,
        entrypoint=["sh", "-c", "for tool in uv pip strip gcc; do command -v $tool; done; true"],
        remove=True,
        user="10001:10001",
        read_only=True,
    )
    assert found.decode().split() == []
    base = os.environ.get("PYTHON_IMAGE", "python:3.11-slim")
    try:
        base_size = engine.images.get(base).attrs["Size"]
    except docker.errors.ImageNotFound:
        return
    # Reported, not asserted: the aim is the base image plus at most 100 MB.
    print(f"{service}: {image.attrs['Size'] / 1e6:.0f} MB, {base} {base_size / 1e6:.0f} MB")
