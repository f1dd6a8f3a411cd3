"""An NGINX configuration from the rendered Ingress and HTTPRoute rules.

Path semantics follow the APIs: ``Prefix`` / ``PathPrefix`` match whole path elements
(``/api`` matches ``/api`` and ``/api/x``, not ``/apix``), ``Exact`` the path alone, and
``ImplementationSpecific`` is a plain string prefix, as ingress-nginx treats it without its
regex annotation. Everything no rule routes is answered ``404`` with an
``application/problem+json`` body, on any host.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from shopstack_rehearse.manifests import KubeObject, ManifestError

NGINX_PREFIX = "nginx.ingress.kubernetes.io/"
NOT_ROUTED = (
    '{"type":"about:blank","title":"Not Found","status":404,'
    '"detail":"no Ingress or HTTPRoute rule routes this host and path"}'
)


@dataclass
class Settings:
    """Per-location settings, from ingress-nginx annotations or Gateway API policies."""

    body_size: str = "1m"  # both ingress-nginx's and NGINX Gateway Fabric's default
    read_timeout: str = "60s"
    send_timeout: str = "60s"
    connect_timeout: str = "5s"
    body_timeout: str = "60s"
    request_buffering: bool = True
    buffering: bool = True
    # ingress-nginx's defaults: on a connection error or a timeout, the next endpoint, 3 tries.
    next_upstream: str = "error timeout"
    next_upstream_tries: str = "3"


@dataclass
class Location:
    match: str  # the NGINX location modifier and path, e.g. "= /x" or "/x/"
    upstreams: list[tuple[str, int]]  # (address:port, weight)
    settings: Settings
    source: str


@dataclass
class Routes:
    # host ("" = every host) -> location match -> Location
    hosts: dict[str, dict[str, Location]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, host: str, location: Location) -> None:
        per_host = self.hosts.setdefault(host, {})
        # For the same path, an Exact rule wins over a prefix; the first rule otherwise.
        if location.match not in per_host:
            per_host[location.match] = location


def _duration(value: str, what: str) -> str:
    """A Gateway API duration (``10s``, ``1m``, ``500ms``, ``1h30m``) in NGINX syntax."""
    if not re.fullmatch(r"(\d+(h|ms|m|s))+", value):
        raise ManifestError(f"{what}: {value!r} is not a Gateway API duration")
    return value


def _seconds(value: str, what: str) -> str:
    if not value.isdigit():
        raise ManifestError(f"{what}: {value!r} is not a number of seconds")
    return f"{value}s"


# What NGINX's proxy_next_upstream takes.
NEXT_UPSTREAM_CASES = frozenset({
    "error", "timeout", "invalid_header", "non_idempotent", "off",
    "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429",
})  # fmt: skip


def ingress_settings(obj: KubeObject) -> Settings:
    settings = Settings()
    annotations = obj.annotations

    def get(name: str) -> str | None:
        return annotations.get(NGINX_PREFIX + name)

    if (size := get("proxy-body-size")) is not None:
        if not re.fullmatch(r"\d+[kKmMgG]?", size):
            raise ManifestError(f"{obj.ref}: proxy-body-size {size!r} is not an NGINX size")
        settings.body_size = size
    for name, attribute in (
        ("proxy-read-timeout", "read_timeout"),
        ("proxy-send-timeout", "send_timeout"),
        ("proxy-connect-timeout", "connect_timeout"),
    ):
        if (value := get(name)) is not None:
            setattr(settings, attribute, _seconds(value, f"{obj.ref} {name}"))
    if (value := get("proxy-request-buffering")) is not None:
        settings.request_buffering = value != "off"
    if (value := get("proxy-buffering")) is not None:
        settings.buffering = value != "off"
    if (value := get("proxy-next-upstream")) is not None:
        if not value.split() or not set(value.split()) <= NEXT_UPSTREAM_CASES:
            raise ManifestError(f"{obj.ref}: proxy-next-upstream {value!r} is not NGINX's")
        settings.next_upstream = value
    if (value := get("proxy-next-upstream-tries")) is not None:
        if not value.isdigit():
            raise ManifestError(f"{obj.ref}: proxy-next-upstream-tries {value!r} is not a number")
        settings.next_upstream_tries = value
    return settings


def _element_prefix(path: str) -> list[str]:
    clean = "/" + path.strip("/")
    if clean == "/":
        return ["/"]
    return [f"= {clean}", f"{clean}/"]


ServicePort = Callable[[str, str, object], tuple[str, int]]


def from_ingress(obj: KubeObject, routes: Routes, service_port: ServicePort) -> None:
    settings = ingress_settings(obj)
    for rule in obj.spec.get("rules") or []:
        host = str(rule.get("host") or "")
        for path in (rule.get("http") or {}).get("paths") or []:
            value = str(path.get("path") or "/")
            path_type = str(path.get("pathType", "ImplementationSpecific"))
            backend = (path.get("backend") or {}).get("service") or {}
            port = backend.get("port") or {}
            target = service_port(
                obj.namespace, str(backend.get("name")), port.get("number", port.get("name"))
            )
            if path_type == "Exact":
                matches = [f"= {value}"]
            elif path_type == "Prefix":
                matches = _element_prefix(value)
            elif path_type == "ImplementationSpecific":
                matches = [value]
            else:
                raise ManifestError(f"{obj.ref}: pathType {path_type!r} is not one Kubernetes has")
            for match in matches:
                routes.add(
                    host, Location(match, [(f"{target[0]}:{target[1]}", 1)], settings, obj.ref)
                )


def route_settings(
    obj: KubeObject, rule: dict[str, object], policies: list[KubeObject]
) -> Settings:
    settings = Settings()
    for policy in policies:
        targets = policy.spec.get("targetRefs") or [policy.spec.get("targetRef") or {}]
        if not any(t.get("kind") == "HTTPRoute" and t.get("name") == obj.name for t in targets):
            continue
        body = policy.spec.get("body") or {}
        if "maxSize" in body:
            settings.body_size = str(body["maxSize"])
        if "timeout" in body:
            settings.body_timeout = _duration(str(body["timeout"]), f"{policy.ref} body.timeout")
    timeouts = rule.get("timeouts") or {}
    assert isinstance(timeouts, dict)
    for key in ("request", "backendRequest"):
        if key in timeouts:
            value = _duration(str(timeouts[key]), f"{obj.ref} timeouts.{key}")
            settings.read_timeout = settings.send_timeout = value
    return settings


def from_http_route(
    obj: KubeObject, routes: Routes, service_port: ServicePort, policies: list[KubeObject]
) -> None:
    hosts = [str(h) for h in obj.spec.get("hostnames") or []] or [""]
    for rule in obj.spec.get("rules") or []:
        settings = route_settings(obj, rule, policies)
        upstreams = []
        for ref in rule.get("backendRefs") or []:
            if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
                raise ManifestError(
                    f"{obj.ref}: backendRef kind {ref.get('kind')!r} is not modelled (Service only)"
                )
            weight = int(ref.get("weight", 1))
            if weight == 0:
                continue
            namespace = str(ref.get("namespace") or obj.namespace)
            address, port = service_port(namespace, str(ref["name"]), ref.get("port"))
            upstreams.append((f"{address}:{port}", weight))
        matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
        for match in matches:
            path = match.get("path") or {"type": "PathPrefix", "value": "/"}
            kind = str(path.get("type", "PathPrefix"))
            value = str(path.get("value", "/"))
            if kind == "Exact":
                locations = [f"= {value}"]
            elif kind == "PathPrefix":
                locations = _element_prefix(value)
            else:
                raise ManifestError(f"{obj.ref}: path match type {kind!r} is not modelled")
            for host in hosts:
                for location in locations:
                    if not upstreams:
                        routes.notes.append(
                            f"{obj.ref}: rule for {location} has no backend with weight: 500"
                        )
                    routes.add(host, Location(location, upstreams, settings, obj.ref))


# ingress-nginx's upstream-keepalive-timeout (its ConfigMap, cluster-wide; no annotation sets
# it per Ingress): how long the controller keeps an idle connection to a pod. The gateway's
# own keep-alive (the chart's gateway.keepAliveSeconds) must be longer.
UPSTREAM_KEEPALIVE_TIMEOUT_SECONDS = 60


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def render(routes: Routes, listen: int = 80) -> str:
    upstream_blocks: list[str] = []
    names: dict[tuple[tuple[str, int], ...], str] = {}

    def upstream(targets: list[tuple[str, int]]) -> str:
        key = tuple(targets)
        if key not in names:
            names[key] = f"backend_{len(names)}"
            servers = "".join(
                f"    server {address} weight={weight};\n" for address, weight in targets
            )
            upstream_blocks.append(
                f"  upstream {names[key]} {{\n{servers}    keepalive 16;\n"
                f"    keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT_SECONDS}s;\n  }}\n"
            )
        return names[key]

    def locations(entries: dict[str, Location]) -> str:
        text = ""
        for match, location in sorted(entries.items()):
            settings = location.settings
            if not location.upstreams:
                body = "      return 500;\n"
            else:
                body = (
                    f"      proxy_pass http://{upstream(location.upstreams)};\n"
                    f"      client_max_body_size {settings.body_size};\n"
                    f"      client_body_timeout {settings.body_timeout};\n"
                    f"      proxy_read_timeout {settings.read_timeout};\n"
                    f"      proxy_send_timeout {settings.send_timeout};\n"
                    f"      proxy_connect_timeout {settings.connect_timeout};\n"
                    f"      proxy_request_buffering {_on(settings.request_buffering)};\n"
                    f"      proxy_buffering {_on(settings.buffering)};\n"
                    f"      proxy_next_upstream {settings.next_upstream};\n"
                    f"      proxy_next_upstream_tries {settings.next_upstream_tries};\n"
                )
            text += f"    # {location.source}\n    location {match} {{\n{body}    }}\n"
        if "/" not in entries:
            text += (
                "    location / {\n      default_type application/problem+json;\n"
                f"      return 404 '{NOT_ROUTED}';\n    }}\n"
            )
        return text

    servers = []
    every_host = routes.hosts.get("", {})
    default = f"    listen {listen} default_server;\n    server_name _;\n"
    servers.append(f"  server {{\n{default}{locations(every_host)}  }}\n")
    for host, entries in sorted(routes.hosts.items()):
        if not host:
            continue
        merged = {**every_host, **entries}
        servers.append(
            f"  server {{\n    listen {listen};\n    server_name {host};\n{locations(merged)}  }}\n"
        )
    return (
        "worker_processes 1;\n"
        "pid /tmp/nginx.pid;\n"
        "error_log stderr notice;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        '  log_format main \'$remote_addr "$host" "$request" $status $request_time\';\n'
        "  access_log /dev/stdout main;\n"
        "  client_body_temp_path /tmp/client_body;\n"
        "  proxy_temp_path /tmp/proxy;\n"
        "  proxy_http_version 1.1;\n"
        '  proxy_set_header Connection "";\n'
        "  proxy_set_header Host $host;\n"
        "  proxy_set_header X-Real-IP $remote_addr;\n"
        "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "  proxy_set_header X-Forwarded-Proto $scheme;\n"
        "  proxy_set_header X-Forwarded-Host $host;\n"
        "  proxy_set_header X-Request-ID $request_id;\n"
        + "".join(upstream_blocks)
        + "".join(servers)
        + "}\n"
    )
