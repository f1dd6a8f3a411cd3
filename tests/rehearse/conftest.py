"""The platform through the deploy rehearsal: the chart rendered for its dev and production
values, run by shopstack-rehearse exactly as `make rehearse` runs it, and reached through the
rehearsal's NGINX.

One rehearsal runs at a time: asking for the other value set closes the one running. Tests
marked ``rehearse`` need a Docker engine and the service images (``make
test-rehearse-platform`` builds them); without either they fail, never skip."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from shopstack_rehearse import cli
from shopstack_rehearse.manifests import Manifests, decode_secret
from shopstack_rehearse.rehearsal import Rehearsal
from tests.deploy.conftest import CHART, HELM, VALUES

RELEASE = NAMESPACE = "shopstack"
IMAGE_TAG = os.environ.get("IMAGE_TAG", "dev")
POSTGRES_IMAGE = os.environ.get("POSTGRES_IMAGE", "postgres:17")
REDIS_IMAGE = os.environ.get("REDIS_IMAGE", "redis:7")
VALUE_SETS = ("dev", "production")
SSL_REDIRECT = (
    f"Ingress/{NAMESPACE}/{RELEASE} metadata.annotations[nginx.ingress.kubernetes.io/ssl-redirect]"
)
KID = "2026-01-01"
# Every request of these tests comes from one address, this machine's, through one NGINX:
# the per-address limits would answer most of them 429, so they are raised for the rehearsal.
LOAD_SETTINGS = {
    "gateway.config.GATEWAY_RATE_LIMIT__ADDRESS__LIMIT": "100000",
    "gateway.config.GATEWAY_RATE_LIMIT__TOKEN__LIMIT": "10000",
    "gateway.config.GATEWAY_RATE_LIMIT__USER__LIMIT": "100000",
}


def run_arguments(values: str, *sets: str) -> list[str]:
    """The command line of `make rehearse VALUES=...`, with the data stores' images mapped
    to the local ones as well."""
    arguments = [
        "run", "--chart", str(CHART), "--helm", str(HELM), "--release", RELEASE,
        "--namespace", NAMESPACE, "--values", str(VALUES[values]),
        "--image", f"shopstack/*:*=shopstack/*:{IMAGE_TAG}",
        "--image", f"docker.io/library/postgres:*={POSTGRES_IMAGE}",
        "--image", f"docker.io/library/redis:*={REDIS_IMAGE}",
        # Well inside pytest's own timeout, so a stuck rollout fails with the pods' states.
        "--timeout", "150",
    ]  # fmt: skip
    for pair in (*(f"{k}={v}" for k, v in LOAD_SETTINGS.items()), *sets):
        arguments += ["--set", pair]
    if values == "production":
        # The rehearsal's NGINX serves plain HTTP only: the redirect to HTTPS that the TLS
        # Ingress asks for cannot be rehearsed, and it does not change how the pods run.
        arguments += ["--allow-unmodelled", SSL_REDIRECT]
    return arguments


@dataclass
class Rehearsed:
    """One value set, installed and through its helm tests."""

    values: str
    cluster: Rehearsal
    manifests: Manifests
    host: str
    admin: tuple[str, str]
    install_seconds: float
    extra_sets: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client of the rehearsal's NGINX, for the Ingress's host."""
        return httpx.Client(
            base_url=self.cluster.url, headers={"Host": self.host}, timeout=15, **kwargs
        )

    def render(self, *sets: str) -> Manifests:
        """The chart rendered again for this value set, with more ``--set`` pairs."""
        arguments = run_arguments(self.values, *self.extra_sets, *sets)
        manifests, _ = cli.load(cli.build_parser().parse_args(arguments))
        return manifests

    def deployment(self, component: str) -> str:
        return f"Deployment/{NAMESPACE}/{RELEASE}-{component}"


def made_beforehand(database_url: str, redis_url: str) -> str:
    """The Secrets production values name, as the platform team makes them first."""
    key = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    secrets = {
        "shopstack-database": {"database-url": database_url.encode()},
        "shopstack-redis": {"redis-url": redis_url.encode()},
        "shopstack-signing-keys": {f"{KID}.pem": key},
        "shopstack-admin": {"email": b"admin@example.com", "password": b"a long admin passphrase"},
    }
    return yaml.safe_dump_all(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
        for name, data in secrets.items()
    )


def start_external_data_stores(cluster: Rehearsal) -> tuple[str, str]:
    """What production values point at: a PostgreSQL and a Redis outside the release, plain
    containers on the rehearsal's network (no pods: no policy of the release covers them).
    They carry the run's labels, so the rehearsal's clean-up removes them too."""
    assert cluster.node is not None
    network = cluster.node.network
    stores = {
        "external-postgres": (
            POSTGRES_IMAGE,
            {"POSTGRES_USER": "shopstack", "POSTGRES_PASSWORD": "external-pw",
             "POSTGRES_DB": "shopstack"},
            ["pg_isready", "--host=127.0.0.1", "--username=shopstack", "--dbname=shopstack"],
        ),
        "external-redis": (REDIS_IMAGE, {}, ["redis-cli", "ping"]),
    }  # fmt: skip
    api = cluster.client.api
    started = []
    for alias, (image, environment, ready) in stores.items():
        container = api.create_container(
            image,
            name=cluster.run.name(alias),
            environment=environment,
            labels=cluster.run.labels(role="external"),
            host_config=api.create_host_config(network_mode=network),
            networking_config=api.create_networking_config(
                {network: api.create_endpoint_config(aliases=[alias])}
            ),
        )
        api.start(container["Id"])
        started.append((alias, container["Id"], ready))
    for alias, container_id, ready in started:
        deadline = time.monotonic() + 120
        while True:
            check = api.exec_create(container_id, ready)
            api.exec_start(check["Id"])
            if api.exec_inspect(check["Id"])["ExitCode"] == 0:
                break
            if time.monotonic() > deadline:
                logs = api.logs(container_id, tail=30).decode(errors="replace")
                pytest.fail(f"the external {alias} did not become ready:\n{logs}")
            time.sleep(1)
    # Absolute names (a trailing dot): the cluster's search path is not tried first. The
    # engine's DNS, which stands for kube-dns, forwards what it does not know to a resolver
    # that may never answer here, where a cluster's DNS would say NXDOMAIN at once.
    return (
        "postgresql://shopstack:external-pw@external-postgres.:5432/shopstack",
        "redis://external-redis.:6379/0",
    )


def admin_credentials(cluster: Rehearsal, manifests: Manifests) -> tuple[str, str]:
    """The first admin, from the Secret the users migration Job reads it from."""
    job = manifests.find("Job", NAMESPACE, f"{RELEASE}-users-migrate")
    assert job is not None, "the render has no users migration Job"
    container = job.spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container.get("env") or []}
    name = env["SHOPSTACK_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
    secret = cluster.secret(NAMESPACE, name)
    if secret is None:
        rendered = manifests.find("Secret", NAMESPACE, name)
        assert rendered is not None, f"no Secret {name}"
        secret = decode_secret(rendered)
    return secret["email"].decode(), secret["password"].decode()


def rehearse(values: str, work: Path) -> Rehearsed:
    started = time.monotonic()
    parser = cli.build_parser()
    options = cli.options(parser.parse_args(run_arguments(values)))
    cluster = Rehearsal(options)  # fails with the reason when no Docker engine answers
    try:
        cluster.start()
        extra: list[str] = []
        arguments = run_arguments(values)
        if values == "production":
            database_url, redis_url = start_external_data_stores(cluster)
            existing = work / "existing-secrets.yaml"
            existing.write_text(made_beforehand(database_url, redis_url))
            # The pods' network is the rehearsal's: the proxies the services trust are on it.
            network = cluster.client.networks.get(cluster.node.network if cluster.node else "")
            subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
            extra = [f"trustedProxies.cidrs={{{subnet}}}"]
            arguments = [*run_arguments(values, *extra), "--existing", str(existing)]
        manifests, objects_before = cli.load(parser.parse_args(arguments))
        cluster.install(manifests, objects_before)
        cluster.test(manifests)
        ingress = manifests.of_kind("Ingress")
        assert ingress, f"the {values} values render no Ingress"
        host = str(ingress[0].spec["rules"][0]["host"])
        return Rehearsed(
            values=values,
            cluster=cluster,
            manifests=manifests,
            host=host,
            admin=admin_credentials(cluster, manifests),
            install_seconds=time.monotonic() - started,
            extra_sets=extra,
        )
    except BaseException:
        cluster.close()
        raise


FIGURES: list[str] = []


class Rehearsals:
    """The one rehearsal running, by value set."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.current: Rehearsed | None = None

    def get(self, values: str) -> Rehearsed:
        if self.current is not None and self.current.values != values:
            self.close()
        if self.current is None:
            self.current = rehearse(values, self.work)
            FIGURES.append(f"{values}: installed and through helm test in "
                           f"{self.current.install_seconds:.0f}s")  # fmt: skip
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.cluster.close()
            self.current = None


@pytest.fixture(scope="session")
def rehearsals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsals]:
    running = Rehearsals(tmp_path_factory.mktemp("rehearse"))
    yield running
    running.close()


@pytest.fixture(scope="session", params=VALUE_SETS)
def rehearsed(request: pytest.FixtureRequest, rehearsals: Rehearsals) -> Rehearsed:
    """The platform rehearsed for each value set in turn."""
    return rehearsals.get(request.param)


@pytest.fixture(scope="session")
def production(rehearsals: Rehearsals) -> Rehearsed:
    """The platform rehearsed for the production values, for the day-2 operations."""
    return rehearsals.get("production")


@pytest.fixture(scope="session")
def figures() -> list[str]:
    """Lines for the summary at the end of the run: timings and day-2 load counts."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("rehearsal figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
