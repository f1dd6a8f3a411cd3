"""`make up`: the whole platform on 127.0.0.1, started in order, stopped as one."""

from __future__ import annotations

import datetime
import http.client
import os
import shutil
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from shopstack_devstack.bytecode import compile_all, installed_packages_compiled
from shopstack_devstack.logview import LogView
from shopstack_devstack.monitoring import (
    LocalMonitoring,
    MonitoringPorts,
)
from shopstack_devstack.nginx import LocalNginx, nginx_binary
from shopstack_devstack.ports import port_in_use
from shopstack_devstack.postgres import EmbeddedPostgres
from shopstack_devstack.processes import Child, StartupError, Supervisor, Wait
from shopstack_devstack.redis_server import EmbeddedRedis
from shopstack_devstack.settings import DevstackSettings

# The admin `make up` creates when SHOPSTACK_ADMIN_EMAIL is not set: for development only.
DEV_ADMIN_EMAIL = "admin@shopstack.local"
DEV_ADMIN_PASSWORD = "shopstack-dev-admin"  # noqa: S105 - printed in the banner on purpose
# The admin console's service client (it reads a user's orders through the gateway).
DEV_CONSOLE_CLIENT_SECRET = "shopstack-dev-console-client"  # noqa: S105 - development only


# A migration may rewrite a large table: it gets longer than a server's start.
MIGRATION_TIMEOUT_SECONDS = 300.0

# Every process the log shows, in start order: the name column is as wide as the longest.
PROCESS_NAMES = ("devstack", "postgres", "redis", "migrate-users", "migrate-orders",
                 "users", "orders", "gateway", "nginx")  # fmt: skip


def ensure_dev_signing_key(keys_dir: Path) -> Path:
    """One Ed25519 key for the users service, made on the first start and kept until
    `--fresh`: every gunicorn worker and every restart sign with the same key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keys_dir.mkdir(parents=True, exist_ok=True)
    if not any(keys_dir.glob("*.pem")):
        kid = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = keys_dir / f"{kid}.pem"
        path.touch(mode=0o600)
        path.write_bytes(pem)
    return keys_dir


def http_ok(url: str) -> Callable[[], bool]:
    """Whether ``url`` answers 200 now (one short try)."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return bool(response.status == 200)
        except (OSError, http.client.HTTPException):  # HTTPError included: not ready yet
            return False

    return answers


def check_postgres(url: str) -> None:
    """Connect once, so a wrong DATABASE_URL is one line before any migration runs."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            return
    except psycopg.Error as error:
        raise StartupError(f"cannot connect to {_redact(url)}: {_reason(error)}") from None


def check_redis(url: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    except ValueError as error:
        raise StartupError(f"cannot connect to {_redact(url)}: {_reason(error)}") from None
    try:
        client.ping()
    except redis.RedisError as error:
        raise StartupError(f"cannot connect to {_redact(url)}: {_reason(error)}") from None
    finally:
        client.close()


def _reason(error: Exception) -> str:
    """The cause in a few words: libpq's and redis-py's messages end with it."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    for marker in ("failed: ", "connecting to "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    if ". " in text:  # redis-py: "Error 111 connecting to host:port. Connection refused."
        text = text.rsplit(". ", 1)[1]
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]


class Stack:
    def __init__(self, settings: DevstackSettings, view: LogView) -> None:
        self.settings = settings
        self.view = view
        for name in PROCESS_NAMES:
            view.register(name)
        self.supervisor = Supervisor(view, settings.data_dir / "run")
        self.database_url = settings.database_url
        self.redis_url = settings.redis_url
        # Each part's start and end (ready, or finished for a migration), in seconds from the
        # start of `up`: printed once up, the start benchmark reads them.
        self.phases: dict[str, list[float]] = {}
        self._started = time.monotonic()
        self.monitoring: LocalMonitoring | None = None
        if settings.monitoring:
            self.monitoring = LocalMonitoring(
                source=settings.monitoring_dir,
                root=settings.data_dir / "monitoring",
                ports=MonitoringPorts(
                    prometheus=settings.prometheus_port,
                    alertmanager=settings.alertmanager_port,
                    postgres_exporter=settings.postgres_exporter_port,
                    redis_exporter=settings.redis_exporter_port,
                    nginx_exporter=settings.nginx_exporter_port,
                    nginx_status=settings.nginx_status_port,
                ),
            )

    # -- the parts ----------------------------------------------------------------------

    def _check_ports(self) -> None:
        s = self.settings
        wanted = {
            "nginx": s.nginx_port, "gateway": s.gateway_port,
            "users": s.users_port, "orders": s.orders_port,
            "orders-relay": s.orders_relay_port,
        }  # fmt: skip
        for instance, port in enumerate(s.gateway_ports[1:], start=2):
            wanted[f"gateway-{instance}"] = port
        if s.database_url is None:
            wanted["postgres"] = s.postgres_port
        if s.redis_url is None:
            wanted["redis"] = s.redis_port
        if self.monitoring is not None:
            wanted |= {
                "prometheus": s.prometheus_port,
                "alertmanager": s.alertmanager_port,
                "postgres-exporter": s.postgres_exporter_port,
                "redis-exporter": s.redis_exporter_port,
                "nginx-exporter": s.nginx_exporter_port,
                "nginx-status": s.nginx_status_port,
            }
        busy = [f"{name} ({port})" for name, port in wanted.items() if port_in_use(port)]
        if busy:
            raise StartupError(
                "ports already in use: "
                + ", ".join(busy)
                + ". Stop what holds them, or choose others (see README: SHOPSTACK_*_PORT)."
            )

    def _start_postgres(self) -> None:
        if self.database_url:
            check_postgres(self.database_url)
            self.view.say(f"using PostgreSQL at DATABASE_URL ({_redact(self.database_url)})")
            return
        self._begin("postgres")
        pg = EmbeddedPostgres(self.settings.data_dir / "postgres", self.settings.postgres_port)
        pg.initialise()
        child = self.supervisor.start(
            Child("postgres", pg.command(), user=pg.run_as_uid, stop_signal=signal.SIGINT)
        )
        pg.wait_ready(self.settings.start_timeout_seconds, alive=self._alive(child))
        pg.ensure_database()
        self.database_url = pg.url
        self._end("postgres")

    def _start_redis(self) -> None:
        self._launch_redis()()

    def _launch_redis(self) -> Callable[[], None]:
        """Start Redis; what it returns waits until it answers."""
        if self.redis_url:
            check_redis(self.redis_url)
            self.view.say(f"using Redis at REDIS_URL ({_redact(self.redis_url)})")
            return lambda: None
        self._begin("redis")
        rd = EmbeddedRedis(self.settings.data_dir / "redis", self.settings.redis_port)
        child = self.supervisor.start(Child("redis", rd.command()))

        def wait() -> None:
            rd.wait_ready(self.settings.start_timeout_seconds, alive=self._alive(child))
            self.redis_url = rd.url
            self._end("redis")

        return wait

    def _start_data_stores(self) -> None:
        """Both embedded: Redis starts while PostgreSQL does (initdb on a first start). A
        server given by URL is checked first, before anything starts, so a wrong one is one
        line."""
        if self.database_url or self.redis_url:
            self._start_postgres()
            self._start_redis()
            return
        redis_ready = self._launch_redis()
        self._start_postgres()
        redis_ready()

    def _compile(self) -> None:
        """Before the first Python process starts (see bytecode.py); after the data stores,
        so a wrong DATABASE_URL is still the first thing said."""
        if not self.settings.compile_bytecode:
            return
        self._begin("bytecode")
        packages = not installed_packages_compiled()
        if packages:
            self.view.say("compiling the installed packages' bytecode (once)")
        compile_all(packages=packages)
        self._end("bytecode")

    def _begin(self, phase: str) -> None:
        self.phases[phase] = [time.monotonic() - self._started]

    def _end(self, phase: str) -> None:
        self.phases[phase].append(time.monotonic() - self._started)

    def _alive(self, child: Child) -> Callable[[], bool]:
        """For a wait loop: whether ``child`` still runs, and a stop asked for ends the wait."""

        def alive() -> bool:
            self.supervisor.stop.check()
            return child.alive

        return alive

    def _wait_ready(self, child: Child, url: str) -> None:
        self.supervisor.wait_until(
            http_ok(url), child=child, timeout=self.settings.start_timeout_seconds, what=url
        )

    def _service_env(self) -> dict[str, str]:
        assert self.database_url
        assert self.redis_url
        return {
            "ENVIRONMENT": "development",
            "LOG_LEVEL": self.settings.log_level,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
        }

    def _users_env(self) -> dict[str, str]:
        """What only users gets: its signing key and, for the bootstrap, the first admin.
        Values set in the environment win over the development defaults."""
        env: dict[str, str] = {}
        if not os.environ.get("JWT_SIGNING_KEYS_DIR") and not os.environ.get("JWT_SIGNING_KEYS"):
            keys = ensure_dev_signing_key(self.settings.data_dir / "keys")
            env["JWT_SIGNING_KEYS_DIR"] = str(keys)
        if not os.environ.get("SHOPSTACK_ADMIN_EMAIL"):
            env["SHOPSTACK_ADMIN_EMAIL"] = DEV_ADMIN_EMAIL
            env["SHOPSTACK_ADMIN_PASSWORD"] = DEV_ADMIN_PASSWORD
        if not os.environ.get("CONSOLE_CLIENT_SECRET"):
            env["CONSOLE_CLIENT_SECRET"] = DEV_CONSOLE_CLIENT_SECRET
        if not os.environ.get("CONSOLE_ORDERS_API_URL"):
            env["CONSOLE_ORDERS_API_URL"] = f"http://127.0.0.1:{self.settings.gateway_port}"
        return env

    def _migrate(self) -> None:
        for service in ("users", "orders"):
            child = self._start_migration(service)
            self.supervisor.wait_all(
                [self._migrated(child, service, lambda: None)],
                timeout=self.settings.start_timeout_seconds,
            )

    def _start_migration(self, service: str) -> Child:
        self._begin(f"migrate-{service}")
        extra = self._users_env() if service == "users" else {}
        return self.supervisor.start(
            Child(
                f"migrate-{service}",
                [sys.executable, "-m", f"shopstack_{service}", "migrate"],
                env={**self._service_env(), **extra},
            )
        )

    def _migrated(self, child: Child, service: str, then: Callable[[], None]) -> Wait:
        """A wait for a migration to finish; ``then`` runs once it has, successfully."""

        def done() -> None:
            code = self.supervisor.finished(child)
            self._end(child.name)
            if code != 0:
                raise StartupError(f"{service} migrations failed (exit {code})")
            then()

        return Wait(
            child, lambda: child.process is not None and child.process.poll() is not None,
            f"{service} migrations", done, timeout=MIGRATION_TIMEOUT_SECONDS,
        )  # fmt: skip

    def _ready(self, child: Child, url: str, then: Callable[[], None] = lambda: None) -> Wait:
        """A wait for ``child`` to answer 200 at ``url``, ending its phase; then ``then``."""

        def done() -> None:
            self._end(child.name)
            then()

        return Wait(child, http_ok(url), url, done)

    def _serve(
        self, service: str, port: int, workers: int, env: dict[str, str], name: str = ""
    ) -> Child:
        """``shopstack-<service> serve``: the command the images and the chart run, with
        its options in the environment. ``name``: of a further instance of the service."""
        run = self.settings.data_dir / "run"
        server = {"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
        # Several workers share their samples through a directory; one keeps them in memory,
        # where prometheus-client also keeps exemplars (trace ids on the latency histograms).
        if workers > 1:
            server["PROMETHEUS_MULTIPROC_DIR"] = str(run / f"metrics-{name or service}")
        self._begin(name or service)
        return self.supervisor.start(
            Child(
                name or service,
                [sys.executable, "-m", f"shopstack_{service}", "serve"],
                env={**self._service_env(), **env, **server},
            )
        )

    def _start_users(self, then: Callable[[], None] = lambda: None) -> Wait:
        s = self.settings
        users = self._serve(
            "users",
            s.users_port,
            s.users_workers,
            {**self._users_env(), "WEB_THREADS": str(s.users_threads)},
        )
        return self._ready(users, f"http://127.0.0.1:{s.users_port}/readyz", then)

    def _start_orders(self) -> list[Wait]:
        s = self.settings
        orders = self._serve("orders", s.orders_port, s.orders_workers, {})
        # `shopstack-orders relay`, as the chart runs it: the outbox to the orders:events stream.
        self._begin("orders-relay")
        relay = self.supervisor.start(
            Child(
                "orders-relay",
                [sys.executable, "-m", "shopstack_orders", "relay"],
                env={**self._service_env(), "HOST": "127.0.0.1", "PORT": str(s.orders_relay_port)},
            )
        )
        return [
            self._ready(orders, f"http://127.0.0.1:{s.orders_port}/readyz"),
            self._ready(relay, f"http://127.0.0.1:{s.orders_relay_port}/metrics"),
        ]

    def _start_gateways(self) -> list[Wait]:
        s = self.settings
        upstreams = {
            "GATEWAY_UPSTREAMS__USERS__URL": f"http://127.0.0.1:{s.users_port}",
            "GATEWAY_UPSTREAMS__ORDERS__URL": f"http://127.0.0.1:{s.orders_port}",
        }
        waits = []
        for instance, port in enumerate(s.gateway_ports, start=1):
            gateway = self._serve(
                "gateway", port, s.gateway_workers, upstreams,
                name="gateway" if instance == 1 else f"gateway-{instance}",
            )  # fmt: skip
            waits.append(self._ready(gateway, f"http://127.0.0.1:{port}/readyz"))
        return waits

    def _start_services(self) -> None:
        """One part after another (start_order=sequential)."""
        timeout = self.settings.start_timeout_seconds
        self.supervisor.wait_all([self._start_users()], timeout=timeout)
        self.supervisor.wait_all(self._start_orders(), timeout=timeout)
        self.supervisor.wait_all(self._start_gateways(), timeout=timeout)

    def _migrate_and_serve(self) -> None:
        """Both migrations at once; each service starts when its own schema is migrated, so
        orders starts while users still migrates. The gateway starts once users answers: it
        loads the token signing keys from users as it starts, and without them every
        token-bearing request would be a 503 until the next fetch."""
        waits: list[Wait] = []

        def serve_users() -> None:
            waits.append(self._start_users(then=lambda: waits.extend(self._start_gateways())))

        def serve_orders() -> None:
            waits.extend(self._start_orders())

        waits += [
            self._migrated(self._start_migration("users"), "users", serve_users),
            self._migrated(self._start_migration("orders"), "orders", serve_orders),
        ]
        self.supervisor.wait_all(waits, timeout=self.settings.start_timeout_seconds)

    def _start_nginx(self) -> None:
        s = self.settings
        nginx = LocalNginx(
            prefix=s.data_dir / "nginx",
            listen=f"127.0.0.1:{s.nginx_port}",
            gateway=f"127.0.0.1:{s.gateway_port}",
            more_gateways=tuple(f"127.0.0.1:{port}" for port in s.gateway_ports[1:]),
            status_listen=self.monitoring.nginx_status_listen if self.monitoring else None,
        )
        nginx.prepare()
        self._begin("nginx")
        child = self.supervisor.start(
            Child("nginx", nginx.command(), stop_signal=signal.SIGQUIT, stop_timeout=10)
        )
        self._wait_ready(child, f"http://127.0.0.1:{s.nginx_port}/readyz")
        self._end("nginx")

    def _start_monitoring(self) -> None:
        monitoring = self.monitoring
        if monitoring is None:
            return
        assert self.database_url
        assert self.redis_url
        s = self.settings
        monitoring.prepare(
            {
                "gateway": list(s.gateway_ports),
                "users": [s.users_port],
                "orders": [s.orders_port],
                "orders-relay": [s.orders_relay_port],
            }
        )
        exporters = [
            (
                self.supervisor.start(
                    Child(
                        "postgres-exporter",
                        monitoring.postgres_exporter_command(),
                        env=monitoring.postgres_exporter_env(self.database_url),
                    )
                ),
                s.postgres_exporter_port,
            ),
            (
                self.supervisor.start(
                    Child("redis-exporter", monitoring.redis_exporter_command(self.redis_url))
                ),
                s.redis_exporter_port,
            ),
            (
                self.supervisor.start(Child("nginx-exporter", monitoring.nginx_exporter_command())),
                s.nginx_exporter_port,
            ),
        ]
        for child, port in exporters:
            self._wait_ready(child, f"http://127.0.0.1:{port}/metrics")
        alertmanager = self.supervisor.start(
            Child("alertmanager", monitoring.alertmanager_command())
        )
        self._wait_ready(alertmanager, f"{monitoring.alertmanager_url}/-/ready")
        prometheus = self.supervisor.start(Child("prometheus", monitoring.prometheus_command()))
        self._wait_ready(prometheus, f"{monitoring.prometheus_url}/-/ready")

    # -- the whole ----------------------------------------------------------------------

    def up(self, *, fresh: bool) -> int:
        started = self._started = time.monotonic()

        def prepare() -> None:
            self._claim()
            self.supervisor.reap_leftovers()
            if fresh:
                self._wipe()
            self._check_ports()
            if self.monitoring is not None:
                # Before anything starts: a missing binary is said at once, not after a minute.
                self.monitoring.prometheus_command()
                self.monitoring.alertmanager_command()
                self.monitoring.postgres_exporter_command()
                self.monitoring.redis_exporter_command("redis://127.0.0.1")
                self.monitoring.nginx_exporter_command()
                nginx_binary(stub_status=True)

        steps: list[Callable[[], None]] = (
            [prepare, self._start_postgres, self._start_redis, self._compile, self._migrate,
             self._start_services]
            if self.settings.start_order == "sequential"
            else [prepare, self._start_data_stores, self._compile, self._migrate_and_serve]
        )  # fmt: skip
        try:
            return self.supervisor.run(
                [*steps, self._start_nginx, self._start_monitoring],
                ready=lambda: self._banner(time.monotonic() - started),
            )
        finally:
            if _running_pid(self._pid_file) == os.getpid():
                self._pid_file.unlink()

    @property
    def _pid_file(self) -> Path:
        return self.settings.data_dir / "devstack.pid"

    def _claim(self) -> None:
        """One `up` per data dir; its pid file is what `down` signals."""
        other = _running_pid(self._pid_file)
        if other is not None and other != os.getpid():
            raise StartupError(f"make up already runs on {self.settings.data_dir} (pid {other})")
        self._pid_file.parent.mkdir(parents=True, exist_ok=True)
        self._pid_file.write_text(str(os.getpid()))

    def down(self) -> int:
        """Stop the `up` of this data dir as Ctrl-C would, and wait for it; then stop what a
        killed one left."""
        pid = _running_pid(self._pid_file)
        if pid is None:
            self.view.say(f"no make up runs on {self.settings.data_dir}")
        else:
            self.view.say(f"stopping make up (pid {pid})")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 120
            while _running_pid(self._pid_file) == pid and time.monotonic() < deadline:
                time.sleep(0.1)
            if _running_pid(self._pid_file) == pid:
                self.view.say(f"make up (pid {pid}) did not stop in 120s")
                return 1
        self.supervisor.reap_leftovers()
        self._pid_file.unlink(missing_ok=True)
        self.view.say("stopped")
        return 0

    def _wipe(self) -> None:
        for part in ("postgres", "redis", "nginx", "keys"):
            path: Path = self.settings.data_dir / part
            if path.exists():
                self.view.say(f"--fresh: removing {path}")
                shutil.rmtree(path)

    def _banner(self, elapsed: float) -> None:
        s = self.settings
        for phase, (begin, *end) in sorted(self.phases.items(), key=lambda item: item[1][0]):
            took = f"{begin:.2f}s to {end[0]:.2f}s" if end else f"from {begin:.2f}s"
            self.view.say(f"start-up phase {phase}: {took}")
        lines = [
            f"shopstack is up in {elapsed:.1f}s. Press Ctrl-C to stop.",
            f"  API (NGINX)   http://127.0.0.1:{s.nginx_port}",
            f"  API docs      http://127.0.0.1:{s.nginx_port}/docs",
            f"  admin console http://127.0.0.1:{s.nginx_port}/admin",
            *(f"  gateway       http://127.0.0.1:{port}" for port in s.gateway_ports),
            f"  users         http://127.0.0.1:{s.users_port}",
            f"  orders        http://127.0.0.1:{s.orders_port}",
            f"  PostgreSQL    {_redact(self.database_url or '')}",
            f"  Redis         {self.redis_url}",
        ]
        if self.monitoring is not None:
            lines += [
                f"  Prometheus    {self.monitoring.prometheus_url}",
                f"  Alertmanager  {self.monitoring.alertmanager_url}",
            ]
        if not os.environ.get("SHOPSTACK_ADMIN_EMAIL"):
            lines.append(f"  admin         {DEV_ADMIN_EMAIL} / {DEV_ADMIN_PASSWORD} (development)")
        for line in lines:
            self.view.say(line)


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    # A zombie or a recycled pid is not make up.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"shopstack" in cmdline else None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
