"""monitoring/ against the running platform: `make monitor` (the platform, Prometheus,
Alertmanager, the PostgreSQL and Redis exporters) on free ports, a few user journeys through
NGINX, then every recording rule, dashboard query and template variable through Prometheus's
HTTP API; Redis stopped and started again, and its alerts followed from Prometheus through
Alertmanager to a webhook receiver this test runs.

The test renders its own copy of monitoring/ to run it fast: scrapes and evaluations every 2 s,
the two Redis alerts' ``for`` at 10 s, Alertmanager's grouping waits at a second or two and its
receivers at the test's webhook. Everything else (every expression, label and route) is the
files' own. Redis is a server the test runs (the platform reads it from ``REDIS_URL``, as it
would any Redis it did not start), so the test can stop it without stopping the platform.
Nothing here reads a clock to judge speed: every wait polls until a generous deadline and
fails with what it saw."""

from __future__ import annotations

import functools
import glob
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shopstack_dashboards.paths import MONITORING
from shopstack_devstack.local_platform import LocalPlatform
from shopstack_devstack.ports import free_port
from shopstack_devstack.redis_server import EmbeddedRedis

from ..monitoring_files import load_dashboards, query_panels, recording_rules

# Firing, delivering and resolving takes minutes of polling; each wait has its own deadline.
pytestmark = [pytest.mark.monitoring_live, pytest.mark.timeout(900)]

INSTALLER = MONITORING / "tools" / "install-tools"
ADMIN = ("admin@shopstack.local", "shopstack-dev-admin")
INTERVAL = "2s"
ALERT_FOR = "10s"
REDIS_ALERTS = {"ShopstackRedisDown", "ShopstackCacheFallbackActive"}
# What a panel's range and variables become in a query sent straight to Prometheus: a range
# of many scrapes (Grafana's $__rate_interval is at least four), and "All" for every variable.
RANGE = "1m"
DEADLINE = 240.0
# The services that run without Redis and say so (shopstack_dependency_fallbacks_total).
DEGRADED_JOBS = {"gateway", "users", "orders"}


# -- the servers the test runs ---------------------------------------------------------------


@dataclass
class Webhook:
    """Alertmanager's receivers: every notification it posts, as it posted it."""

    port: int
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def seen(self, alertname: str, status: str) -> list[dict[str, Any]]:
        return [
            alert
            for notification in self.notifications
            for alert in notification["alerts"]
            if alert["labels"]["alertname"] == alertname and alert["status"] == status
        ]


class TestRedis:
    """A Redis the test can stop and start again on the same port."""

    __test__ = False

    def __init__(self, root: Path) -> None:
        self.server = EmbeddedRedis(root, free_port(), durable=False)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.process = subprocess.Popen(self.server.command(), stdout=subprocess.DEVNULL)
        self.server.wait_ready(
            30, alive=lambda: self.process is not None and self.process.poll() is None
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None


# -- the monitoring configuration the test runs ----------------------------------------------


def render_monitoring(target: Path, webhook: Webhook) -> Path:
    """A copy of monitoring/ with the test's intervals, ``for`` and receivers."""
    for part in ("prometheus", "rules", "alerts", "alertmanager"):
        shutil.copytree(MONITORING / part, target / part)
    prometheus = target / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(prometheus.read_text())
    config["global"] |= {
        "scrape_interval": INTERVAL,
        "scrape_timeout": INTERVAL,
        "evaluation_interval": INTERVAL,
    }
    prometheus.write_text(yaml.safe_dump(config, sort_keys=False))
    for path in (target / "alerts").glob("*.yaml"):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") in REDIS_ALERTS:
                    rule["for"] = ALERT_FOR
        path.write_text(yaml.safe_dump(rules, sort_keys=False))
    alertmanager = target / "alertmanager" / "alertmanager.yml"
    routing = yaml.safe_load(alertmanager.read_text())
    for route in (routing["route"], *routing["route"].get("routes", [])):
        route |= {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
    for receiver in routing["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            path = urllib.parse.urlsplit(hook["url"]).path
            hook["url"] = f"http://127.0.0.1:{webhook.port}{path}"
    alertmanager.write_text(yaml.safe_dump(routing, sort_keys=False))
    return target


# -- Prometheus --------------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str

    def get(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        assert answer.status_code == 200, f"{path} {params}: {answer.status_code} {answer.text}"
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v1/alerts")["alerts"]
        return alerts


def concrete(expr: str) -> str:
    """A panel's query as Prometheus runs it: the range filled in, every variable "All"."""
    expr = expr.replace("$__rate_interval", RANGE)
    return re.sub(r"\$\{?\w+\}?", ".+", expr)


def wait_for(what: str, check: Callable[[], object], seen: Callable[[], object]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    pytest.fail(f"{what}: not within {DEADLINE:.0f} s; last seen: {seen()}")


# -- journeys ---------------------------------------------------------------------------------


def sign_in(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, str] = answer.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def journeys(client: httpx.Client) -> None:
    """What customers and an operator do: sign up and in (once with a wrong password), read
    the catalog, order, replay an order, run out of stock, pay, rotate and reuse a refresh
    token, and present a forged token."""
    admin = bearer(sign_in(client, *ADMIN))
    email, password = f"ada-{uuid.uuid4().hex[:8]}@example.com", "Ada has a long passphrase"
    created = client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "Ada"}
    )
    assert created.status_code == 201, created.text
    wrong = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": "not it at all"},
    )
    assert wrong.status_code == 400, wrong.text
    tokens = sign_in(client, email, password)
    ada = bearer(tokens)
    kettle = {"sku": f"KETTLE-{uuid.uuid4().hex[:6]}", "name": "Kettle", "price": 2599,
              "currency": "EUR", "stock": 3}  # fmt: skip
    made = client.post("/api/v1/products", json=kettle, headers=admin)
    assert made.status_code == 201, made.text
    product = made.json()
    for _ in range(3):
        assert client.get(f"/api/v1/products/{product['id']}").status_code == 200
        assert client.get("/api/v1/products").status_code == 200
        assert client.get("/api/v1/users/me", headers=ada).status_code == 200
    order_in = {"items": [{"product_id": product["id"], "quantity": 2}]}
    key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    placed = client.post("/api/v1/orders", json=order_in, headers={**ada, **key})
    assert placed.status_code == 201, placed.text
    replayed = client.post("/api/v1/orders", json=order_in, headers={**ada, **key})
    assert replayed.headers.get("idempotent-replayed") == "true", replayed.text
    assert client.post("/api/v1/orders", json=order_in, headers=ada).status_code == 409
    order = placed.json()
    paid = client.post(
        f"/api/v1/orders/{order['id']}/transitions", json={"to": "paid"}, headers=admin
    )
    assert paid.status_code == 200, paid.text
    assert client.get("/api/v1/orders", headers=ada).status_code == 200
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert client.post("/api/v1/auth/token", data=refresh).status_code == 200
    assert client.post("/api/v1/auth/token", data=refresh).status_code == 400  # reused
    forged = tokens["access_token"][:-4] + "AAAA"
    assert (
        client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    assert client.get("/api/v1/no-such-thing").status_code == 404


class Traffic:
    """Reads in the background, so the services keep meeting the Redis outage."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = base_url
        self.headers = headers
        self.stopping = threading.Event()
        self.statuses: dict[int, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as client:
            while not self.stopping.wait(0.5):
                for path, headers in (("/api/v1/products", {}), ("/api/v1/users/me", self.headers)):
                    try:
                        status = client.get(path, headers=headers).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.statuses[status] = self.statuses.get(status, 0) + 1


# -- the tier ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> None:
    """Prometheus, Alertmanager and the exporters, from Debian's packages; a machine where
    they cannot be installed fails here with the installer's reason."""
    subprocess.run([str(INSTALLER), "live"], check=True)


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook(free_port())
    server = hook.serve()
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRedis]:
    server = TestRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def monitored(
    tools: None, webhook: Webhook, redis: TestRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPlatform]:
    root = tmp_path_factory.mktemp("live")
    monitoring = render_monitoring(root / "monitoring", webhook)
    names = ("nginx", "gateway", "gateway_extra", "users", "orders", "orders_relay", "postgres",
             "prometheus", "alertmanager", "postgres_exporter", "redis_exporter", "nginx_exporter",
             "nginx_status")  # fmt: skip
    stack = LocalPlatform(
        data_dir=root / "devstack",
        ports={name: free_port() for name in names},
        extra_env={
            "SHOPSTACK_MONITORING": "1",
            # Two gateways, as in the cluster: each is a target of the gateway job.
            "SHOPSTACK_GATEWAY_INSTANCES": "2",
            "SHOPSTACK_MONITORING_DIR": str(monitoring),
            "REDIS_URL": redis.url,
        },
    )
    stack.start()
    yield stack
    assert stack.stop() == 0, stack.log()[-4000:]


@pytest.fixture(scope="module")
def prometheus(monitored: LocalPlatform) -> Prometheus:
    return Prometheus(f"http://127.0.0.1:{monitored.ports['prometheus']}")


def test_the_configuration_it_runs_passes_promtool(monitored: LocalPlatform) -> None:
    rendered = monitored.data_dir / "monitoring" / "prometheus.yml"
    for command in (["check", "config", str(rendered)], ["check", "rules", *rule_paths(monitored)]):
        checked = subprocess.run(
            ["promtool", *command], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def rule_paths(monitored: LocalPlatform) -> list[str]:
    config = yaml.safe_load((monitored.data_dir / "monitoring" / "prometheus.yml").read_text())
    paths = sorted(path for pattern in config["rule_files"] for path in glob.glob(pattern))
    assert paths, config["rule_files"]
    return paths


def test_every_target_is_up_and_every_rule_healthy(
    monitored: LocalPlatform, prometheus: Prometheus
) -> None:
    jobs = {
        "gateway",
        "users",
        "orders",
        "orders-relay",
        "postgres",
        "redis",
        "nginx",
        "prometheus",
        "alertmanager",
    }

    def targets() -> dict[tuple[str, str], str]:
        found = prometheus.get("/api/v1/targets")["activeTargets"]
        return {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in found}

    def every_target_up() -> bool:
        found = targets()
        per_job = Counter(job for job, _ in found)
        return (
            set(per_job) == jobs
            and per_job["gateway"] == 2
            and all(health == "up" for health in found.values())
        )

    wait_for("every target up", every_target_up, targets)

    def exporters_reach_their_servers() -> list[dict[str, Any]]:
        return prometheus.query("pg_up == 1 or redis_up == 1 or nginx_up == 1")

    wait_for(
        "pg_up, redis_up and nginx_up at 1",
        lambda: len(exporters_reach_their_servers()) == 3,
        exporters_reach_their_servers,
    )

    def unhealthy() -> list[tuple[str, str]]:
        groups = prometheus.get("/api/v1/rules")["groups"]
        return [
            (rule["name"], rule.get("lastError", rule["health"]))
            for group in groups
            for rule in group["rules"]
            if rule["health"] != "ok"
        ]

    wait_for("every rule evaluated and healthy", lambda: not unhealthy(), unhealthy)


def test_after_the_journeys_every_rule_and_dashboard_query_returns_series(
    monitored: LocalPlatform, prometheus: Prometheus
) -> None:
    with httpx.Client(base_url=monitored.url, timeout=15) as client:
        journeys(client)
    queries = sorted({concrete(expr) for panel in query_panels() for expr in panel.exprs})
    records = sorted({rule.record for rule in recording_rules() if rule.record})

    def empty() -> list[str]:
        return [expr for expr in [*records, *queries] if not prometheus.query(expr)]

    # Long windows (28 days) and rates need a few samples after the journeys.
    wait_for("every recorded series and every panel query answered", lambda: not empty(), empty)
    print(f"\n{len(records)} recording rules and {len(queries)} dashboard queries returned series")


def test_single_worker_services_leave_trace_ids_as_exemplars(
    monitored: LocalPlatform, prometheus: Prometheus
) -> None:
    """gateway and orders run one worker under make up, so prometheus-client keeps exemplars
    and Prometheus (exemplar storage on) stores them; users runs two (multiprocess: none)."""
    with httpx.Client(base_url=monitored.url, timeout=15) as client:
        assert client.get("/api/v1/products").status_code == 200

    def exemplars() -> dict[str, set[str]]:
        now = time.time()
        found: dict[str, set[str]] = {}
        for series in ("shopstack_http_request_duration_seconds_bucket",
                       "shopstack_gateway_upstream_request_duration_seconds_bucket"):  # fmt: skip
            data = prometheus.get(
                "/api/v1/query_exemplars", query=series, start=str(now - 600), end=str(now)
            )
            for group in data:
                ids = {e["labels"].get("trace_id", "") for e in group["exemplars"]}
                found.setdefault(f"{series}{{job={group['seriesLabels']['job']}}}", set()).update(
                    ids
                )
        return found

    def complete() -> bool:
        found = exemplars()
        wanted = [key for key in found if "job=gateway" in key or "job=orders" in key]
        return len(wanted) == 3 and all(
            any(re.fullmatch(r"[0-9a-f]{32}", trace_id) for trace_id in found[key])
            for key in wanted
        )

    wait_for("trace ids on gateway's and orders' latency buckets", complete, exemplars)
    assert not any("job=users" in key for key in exemplars()), "users runs two workers"


def test_every_template_variable_resolves(monitored: LocalPlatform, prometheus: Prometheus) -> None:
    label_values = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
    variables = [
        variable
        for model in load_dashboards().values()
        for variable in model["templating"]["list"]
        if variable["type"] == "query"
    ]
    assert variables
    for variable in variables:
        match = label_values.match(variable["query"])
        assert match, variable["query"]
        values = prometheus.get(
            f"/api/v1/label/{match['label']}/values", **{"match[]": concrete(match["selector"])}
        )
        assert values, variable["query"]


def test_redis_down_fires_its_alerts_to_the_receiver_and_they_resolve(
    monitored: LocalPlatform, prometheus: Prometheus, redis: TestRedis, webhook: Webhook
) -> None:
    with httpx.Client(base_url=monitored.url, timeout=15) as client:
        tokens = sign_in(client, *ADMIN)

    def state(name: str) -> set[str]:
        return {a["state"] for a in prometheus.alerts() if a["labels"]["alertname"] == name}

    def firing_jobs() -> set[str]:
        return {
            a["labels"].get("job", "")
            for a in prometheus.alerts()
            if a["labels"]["alertname"] == "ShopstackCacheFallbackActive" and a["state"] == "firing"
        }

    def alerts_seen() -> list[tuple[str, str, str]]:
        return [
            (a["labels"]["alertname"], a["labels"].get("job", ""), a["state"])
            for a in prometheus.alerts()
        ]

    def delivered() -> list[tuple[str, str, str]]:
        return [
            (n["path"], a["labels"]["alertname"], a["status"])
            for n in webhook.notifications
            for a in n["alerts"]
        ]

    def wait_delivered(status: str) -> None:
        for name in sorted(REDIS_ALERTS):
            wait_for(
                f"{name} {status} at the receiver",
                functools.partial(webhook.seen, name, status),
                delivered,
            )

    assert not REDIS_ALERTS & {a["labels"]["alertname"] for a in prometheus.alerts()}
    with Traffic(monitored.url, bearer(tokens)) as traffic:
        redis.stop()
        try:
            wait_for(
                "ShopstackRedisDown firing",
                lambda: state("ShopstackRedisDown") == {"firing"},
                alerts_seen,
            )
            wait_for(
                "ShopstackCacheFallbackActive firing for every service",
                lambda: firing_jobs() == DEGRADED_JOBS,
                alerts_seen,
            )
            wait_delivered("firing")
        finally:
            redis.start()
        wait_for(
            "the Redis alerts resolved in Prometheus",
            lambda: not (REDIS_ALERTS & {a["labels"]["alertname"] for a in prometheus.alerts()}),
            alerts_seen,
        )
        wait_delivered("resolved")
    print(f"\nbackground reads while Redis was away and back: {traffic.statuses}")
    for path, alertname, status in delivered():
        print(f"  delivered to {path}: {alertname} {status}")
    # Degraded, not down: the reads went on while Redis was away.
    assert set(traffic.statuses) == {200}, traffic.statuses
    for notification in webhook.notifications:
        if any(a["labels"]["alertname"] in REDIS_ALERTS for a in notification["alerts"]):
            assert notification["path"] == "/ticket", notification
