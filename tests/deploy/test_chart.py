"""The Helm chart: lint, the Kubernetes schemas, and the rules the chart promises."""

import base64
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shopstack_gateway.config import GatewaySettings
from shopstack_orders.config import OrdersSettings
from shopstack_rehearse.ingress_nginx import UPSTREAM_KEEPALIVE_TIMEOUT_SECONDS
from shopstack_users.config import UsersSettings

from .conftest import (
    CHART,
    NAMESPACE,
    VALUES,
    WORKLOAD_KINDS,
    Manifest,
    Render,
    containers,
    named,
    of_kind,
    pod_spec,
    render_error,
    run_helm,
)

pytestmark = pytest.mark.deploy

SERVICES = ["gateway", "users", "orders"]
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest whose
# schemas kubernetes-validate carries.
OLDEST_KUBERNETES = "1.27.0"
KUBERNETES_VERSIONS = [OLDEST_KUBERNETES, kubernetes_validate.latest_version()]
# Kinds from CRDs, which the Kubernetes schemas do not hold; their fields are checked below.
CUSTOM_KINDS = {"HTTPRoute", "ServiceMonitor", "PrometheusRule"}
MONITORING = CHART.parents[2] / "monitoring"


def name(component: str) -> str:
    return f"shop-shopstack-{component}"


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("values", VALUES)
def test_lint_strict_passes(helm: Path, values: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(VALUES[values]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_oldest_kubernetes_is_the_charts_own() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={OLDEST_KUBERNETES}-0"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", VALUES)
def test_rendered_manifests_match_the_kubernetes_schemas(
    render: Render, values: str, version: str
) -> None:
    docs = render(values)
    builtin = [doc for doc in docs if doc["kind"] not in CUSTOM_KINDS]
    assert builtin
    for doc in builtin:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("values", "setting", "message"),
    [
        ("production", {"database.existingSecret": ""}, "database.existingSecret is required"),
        ("production", {"cache.existingSecret": ""}, "cache.existingSecret is required"),
        (
            "dev",
            {"users.terminationGracePeriodSeconds": "20"},
            "users.terminationGracePeriodSeconds (20) must be longer than",
        ),
        (
            "dev",
            {"routing.paths[0].path": "/metrics", "routing.paths[0].pathType": "Prefix"},
            "must not route /metrics",
        ),
        ("dev", {"gateway.pdb.minAvailable": "1"}, "set minAvailable or maxUnavailable"),
        ("dev", {"orders.autoscaling.maxReplicas": "1"}, "maxReplicas must be at least"),
        (
            "dev",
            {"ingress.readTimeoutSeconds": "15"},
            "must be longer than the WebSocket heartbeat",
        ),
    ],
)
def test_conflicting_values_fail_with_the_setting_to_fix(
    helm: Path, values: str, setting: dict[str, str], message: str
) -> None:
    assert message in render_error(helm, values, setting)


@pytest.mark.parametrize(
    "setting",
    [
        {"environment": "staging"},
        {"unknownKey": "1"},
        {"gateway.unknownKey": "1"},
        {"trustedProxies.cidrs[0]": "*"},
        {"gateway.workers": "0"},
        {"users.image.digest": "latest"},
        {"ingress.maxBodySize": "lots"},
        {"routing.paths[0].pathType": "ImplementationSpecific"},
        {"orders.containerPorts.metrics": "70000"},
        {"users.config.lower-case": "x"},
    ],
    ids=lambda setting: next(iter(setting)),
)
def test_the_schema_rejects_bad_values(helm: Path, setting: dict[str, str]) -> None:
    assert "schema" in render_error(helm, "dev", setting)


def _leaves(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the values a user sets: nested keys down to the free-form maps."""
    free_form = {
        "resources",
        "podSecurityContext",
        "containerSecurityContext",
        "updateStrategy",
        "behavior",
        "namespaceSelector",
        "podSelector",
    }
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in free_form:
            paths |= _leaves(value, f"{path}.")
        else:
            paths.add(path)
    return paths


def test_every_value_is_documented_and_in_the_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    params = set(re.findall(r"^## @param (\S+) ", text, re.MULTILINE))
    leaves = _leaves(yaml.safe_load(text))
    assert leaves - params == set(), "values without a ## @param line"
    assert params - leaves == set(), "## @param lines naming no value"
    schema = json.loads((CHART / "values.schema.json").read_text())

    def described(path: str) -> dict[str, Any]:
        node = schema
        for part in path.split("."):
            assert node.get("additionalProperties") is False, f"{path}: the schema is not strict"
            node = node["properties"][part]
        return node

    for path in leaves:
        assert described(path).get("description"), path


@pytest.mark.parametrize("values", VALUES)
def test_every_container_runs_under_the_restricted_profile(render: Render, values: str) -> None:
    workloads = [d for d in render(values) if d["kind"] in WORKLOAD_KINDS]
    for doc in workloads:
        pod = pod_spec(doc)
        assert pod["automountServiceAccountToken"] is False, doc["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert "fsGroup" in pod["securityContext"]
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["runAsNonRoot"] is True
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    service_pods = [d for d in workloads if d["kind"] in {"Deployment", "Job", "Pod"}]
    for doc in service_pods:
        assert pod_spec(doc)["securityContext"]["fsGroup"] == 10001
        for container in containers(doc):
            if container["name"] != "wait-for-postgresql":
                assert container["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("values", VALUES)
def test_service_accounts_never_mount_an_api_token(render: Render, values: str) -> None:
    for account in of_kind(render(values), "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("values", ["dev", "production"])
def test_each_service_has_its_objects_and_selects_only_its_own_pods(
    render: Render, values: str
) -> None:
    docs = render(values)
    services = {d["metadata"]["name"]: d for d in of_kind(docs, "Service")}
    selectable = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    for component in SERVICES:
        deployment = named(docs, "Deployment", name(component))
        for kind in ("ConfigMap", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
            named(docs, kind, name(component))
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }
        service = services[name(component)]
        assert service["spec"]["selector"] == selector
        assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
            "http": "http",
            "metrics": "metrics",
        }
        # Only this Deployment's pods carry all of the Service's selector labels.
        chosen = [
            d["metadata"]["name"] for d in selectable if selector.items() <= _pod_labels(d).items()
        ]
        assert chosen == [name(component)]


def _pod_labels(doc: Manifest) -> dict[str, str]:
    metadata = doc["metadata"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]
    labels: dict[str, str] = metadata["labels"]
    return labels


@pytest.mark.parametrize("component", SERVICES)
def test_probes_ports_and_a_shutdown_that_finishes_requests(render: Render, component: str) -> None:
    deployment = named(render("dev"), "Deployment", name(component))
    (container,) = containers(deployment)
    assert container["command"] == [f"shopstack-{component}"]
    assert container["args"] == ["serve"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8000,
        "metrics": 9090,
    }
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    config = named(render("dev"), "ConfigMap", name(component))["data"]
    graceful = float(config["GRACEFUL_TIMEOUT_SECONDS"])
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > sleep + graceful
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tmp"] == "/tmp"  # noqa: S108 - the mount path the pod gets, not a file here
    # Multiprocess metrics only with several workers: one keeps its exemplars in memory.
    if int(config["WEB_CONCURRENCY"]) > 1:
        assert mounts["metrics"] == config["PROMETHEUS_MULTIPROC_DIR"]
    else:
        assert "PROMETHEUS_MULTIPROC_DIR" not in config
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert "emptyDir" in volumes["metrics"]
    assert pod_spec(deployment)["topologySpreadConstraints"]


@pytest.mark.parametrize("values", VALUES)
def test_the_gateway_keeps_idle_connections_longer_than_the_ingress_controller(
    render: Render, values: str
) -> None:
    """Else the controller may write a request on a connection the gateway is closing: reset,
    and a 502 for a POST, which it cannot send again."""
    config = named(render(values), "ConfigMap", name("gateway"))["data"]
    assert int(config["KEEP_ALIVE_SECONDS"]) > UPSTREAM_KEEPALIVE_TIMEOUT_SECONDS


def test_autoscaling_is_on_for_the_gateway_and_orders(render: Render) -> None:
    docs = render("dev")
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert scaled == {name("gateway"), name("orders")}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
    # The HPA owns the replica count; a Deployment naming one would fight it on every upgrade.
    assert "replicas" not in named(docs, "Deployment", name("gateway"))["spec"]
    assert named(docs, "Deployment", name("users"))["spec"]["replicas"] == 2


SETTINGS = {"gateway": GatewaySettings, "users": UsersSettings, "orders": OrdersSettings}
# Read by libraries, not by the settings classes.
LIBRARY_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR"}


def _variables_read(settings: type[Any]) -> set[str]:
    """The environment variable names a settings class reads (their top-level part)."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.add(str(choices[0]) if choices else f"{prefix}{field_name}".upper())
    return names


@pytest.mark.parametrize("values", ["dev", "gateway-api"])
@pytest.mark.parametrize("component", SERVICES)
def test_every_setting_the_chart_passes_is_one_the_service_reads(
    render: Render, values: str, component: str
) -> None:
    docs = render(values)
    config = named(docs, "ConfigMap", name(component))["data"]
    (container,) = containers(named(docs, "Deployment", name(component)))
    passed = set(config) | set(env_of(container))
    read = _variables_read(SETTINGS[component]) | LIBRARY_VARIABLES
    delimiter = SETTINGS[component].model_config.get("env_nested_delimiter") or "\0"
    unknown = {v for v in passed if v.split(delimiter)[0] not in read}
    assert unknown == set()
    assert "*" not in config["FORWARDED_ALLOW_IPS"]


def test_the_gateway_finds_its_upstreams_and_users_counts_its_proxies(render: Render) -> None:
    docs = render("dev")
    gateway = named(docs, "ConfigMap", name("gateway"))["data"]
    assert gateway["GATEWAY_UPSTREAMS__USERS__URL"] == f"http://{name('users')}:8000"
    assert gateway["GATEWAY_UPSTREAMS__ORDERS__URL"] == f"http://{name('orders')}:8000"
    users = named(docs, "ConfigMap", name("users"))["data"]
    # The gateway passes on the client it resolved from its trusted proxies as the last
    # X-Forwarded-For entry: users trusts that one hop, whatever stands in front.
    assert users["TRUSTED_PROXY_HOPS"] == "1"


def test_a_config_change_rolls_only_the_pods_it_concerns(render: Render) -> None:
    def checksums(docs: list[Manifest]) -> dict[str, str]:
        pods = {d["metadata"]["name"]: d["spec"]["template"] for d in of_kind(docs, "Deployment")}
        return {n: pod["metadata"]["annotations"]["checksum/config"] for n, pod in pods.items()}

    before = checksums(render("production"))
    after = checksums(render("production", {"users.config.LOGIN_MAX_FAILURES": "9"}))
    assert before[name("users")] != after[name("users")]
    assert before[name("gateway")] == after[name("gateway")]
    changed = named(
        render("production", {"users.config.LOGIN_MAX_FAILURES": "9"}), "ConfigMap", name("users")
    )
    assert changed["data"]["LOGIN_MAX_FAILURES"] == "9"


def test_users_reads_its_keys_as_the_kubelet_mounts_them(render: Render) -> None:
    users = named(render("production"), "Deployment", name("users"))
    (container,) = containers(users)
    config = named(render("production"), "ConfigMap", name("users"))["data"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "signing-keys")
    assert config["JWT_SIGNING_KEYS_DIR"] == mount["mountPath"]
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec(users)["volumes"] if v["name"] == "signing-keys")
    assert volume["secret"]["secretName"] == "shopstack-signing-keys"
    # Root-owned files the pod's group may read: 0400 without fsGroup is unreadable by 10001.
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod_spec(users)["securityContext"]["fsGroup"] == 10001
    # A Secret made beforehand rolls the pods when it changes (its live data's checksum).
    assert "checksum/signing-keys" in users["spec"]["template"]["metadata"]["annotations"]
    for doc in render("production"):
        if doc["kind"] in WORKLOAD_KINDS and "users" not in doc["metadata"]["name"]:
            for other in containers(doc):
                assert "SHOPSTACK_ADMIN_PASSWORD" not in env_of(other)
                assert "signing-keys" not in {m["name"] for m in other.get("volumeMounts", [])}


def test_dev_mode_makes_every_secret_and_production_none(render: Render) -> None:
    assert of_kind(render("production"), "Secret") == []
    secrets = {s["metadata"]["name"]: s for s in of_kind(render("dev"), "Secret")}
    assert set(secrets) == {
        name("users-signing-keys"),
        name("users-admin"),
        name("postgresql"),
        name("redis"),
    }

    def value(secret: str, key: str) -> str:
        return base64.b64decode(secrets[secret]["data"][key]).decode()

    ((kid, pem_b64),) = secrets[name("users-signing-keys")]["data"].items()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.pem", kid)
    key = load_pem_private_key(base64.b64decode(pem_b64), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    password = value(name("postgresql"), "password")
    assert value(name("postgresql"), "database-url") == (
        f"postgresql://shopstack:{password}@{name('postgresql')}:5432/shopstack"
    )
    assert value(name("redis"), "redis-url").endswith(f"@{name('redis')}:6379/0")
    assert value(name("users-admin"), "email") == "admin@shopstack.local"
    assert len(value(name("users-admin"), "password")) == 24


CONSOLE_ON = {"users.console.enabled": "true"}


def test_the_console_is_off_unless_asked_for(render: Render) -> None:
    docs = render("dev")
    (container,) = containers(named(docs, "Deployment", name("users")))
    assert not [v for v in env_of(container) if v.startswith("CONSOLE_")]
    assert not [k for k in named(docs, "ConfigMap", name("users"))["data"] if "CONSOLE" in k]


def test_the_console_gets_its_secrets_and_reads_orders_through_the_gateway(
    render: Render,
) -> None:
    docs = render("dev", CONSOLE_ON)
    secret = named(docs, "Secret", name("users-console"))
    assert len(base64.b64decode(secret["data"]["secret-key"])) == 48
    assert len(base64.b64decode(secret["data"]["client-secret"])) == 32
    (container,) = containers(named(docs, "Deployment", name("users")))
    env = env_of(container)
    for variable, key in (
        ("CONSOLE_SECRET_KEY", "secret-key"),
        ("CONSOLE_CLIENT_SECRET", "client-secret"),
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {
            "name": name("users-console"),
            "key": key,
        }
    config = named(docs, "ConfigMap", name("users"))["data"]
    assert config["CONSOLE_ORDERS_API_URL"] == f"http://{name('gateway')}:8000"
    read = _variables_read(UsersSettings)
    assert {"CONSOLE_SECRET_KEY", "CONSOLE_CLIENT_SECRET", "CONSOLE_ORDERS_API_URL"} <= read
    # migrate sets up the console's service client with the same secret.
    (migrate,) = pod_spec(named(docs, "Job", name("users-migrate")))["containers"]
    assert env_of(migrate)["CONSOLE_CLIENT_SECRET"] == env["CONSOLE_CLIENT_SECRET"]
    # Operators reach it by port-forwarding the gateway; no route sends the public there.
    (ingress,) = of_kind(docs, "Ingress")
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert not [path for path in paths if path.startswith("/admin")]


def test_a_console_secret_made_beforehand_is_used_and_none_is_made(render: Render) -> None:
    docs = render("production", {**CONSOLE_ON, "users.console.existingSecret": "console"})
    assert of_kind(docs, "Secret") == []
    (container,) = containers(named(docs, "Deployment", name("users")))
    assert env_of(container)["CONSOLE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "console"
    hooks = {job["metadata"]["annotations"]["helm.sh/hook"] for job in of_kind(docs, "Job")}
    assert hooks == {"pre-install,pre-upgrade"}


def test_migrations_run_before_the_pods_in_production(render: Render) -> None:
    docs = render("production")
    jobs = {j["metadata"]["name"]: j for j in of_kind(docs, "Job")}
    assert set(jobs) == {name("users-migrate"), name("orders-migrate")}
    for job in jobs.values():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        assert job["spec"]["activeDeadlineSeconds"] > 0
        assert [c["args"] for c in containers(job)] == [["migrate"]]
        assert pod_spec(job)["restartPolicy"] == "Never"
    weights = {n: int(j["metadata"]["annotations"]["helm.sh/hook-weight"]) for n, j in jobs.items()}
    assert weights[name("users-migrate")] < weights[name("orders-migrate")]
    # What the Jobs need is a hook of a lower weight too, so it exists before they run.
    for kind in ("ServiceAccount", "NetworkPolicy"):
        support = named(docs, kind, name("migrate"))
        assert support["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        weight = int(support["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert weight < min(weights.values())
    users_env = env_of(containers(jobs[name("users-migrate")])[0])
    assert users_env["SHOPSTACK_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "shopstack-admin",
        "key": "password",
    }
    assert of_kind(render("everything-off"), "Job") == []


@pytest.mark.parametrize("values", ["dev", "in-chart-databases"])
def test_with_in_chart_data_stores_migrations_wait_for_them(render: Render, values: str) -> None:
    for job in of_kind(render(values), "Job"):
        # Pre-install hooks run before Helm creates the StatefulSets: migrate after them.
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
        (wait,) = pod_spec(job)["initContainers"]
        assert "pg_isready" in " ".join(wait["command"])
        assert env_of(wait)["PGHOST"]["value"] == name("postgresql")


def test_data_stores_are_in_chart_only_in_dev(render: Render) -> None:
    dev = render("dev")
    for store, image, port in (("postgresql", "postgres", 5432), ("redis", "redis", 6379)):
        statefulset = named(dev, "StatefulSet", name(store))
        (claim,) = statefulset["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"]
        (container,) = containers(statefulset)
        # The official images.
        assert container["image"].startswith(f"docker.io/library/{image}:")
        assert container["ports"][0]["containerPort"] == port
    assert of_kind(render("production"), "StatefulSet") == []


def test_image_references(render: Render) -> None:
    def images(docs: list[Manifest]) -> dict[str, str]:
        return {
            d["metadata"]["name"]: containers(d)[-1]["image"] for d in of_kind(docs, "Deployment")
        }

    assert images(render("dev"))[name("users")] == "shopstack/users:0.1.0"
    pinned = images(render("gateway-api"))
    assert pinned[name("orders")] == "registry.example.com/shopstack/orders:1.2.3"
    assert pinned[name("gateway")] == (
        "registry.example.com/shopstack/gateway@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    deployed = images(render("dev", {"image.registry": "registry.local:5000", "image.tag": "abc"}))
    assert deployed[name("orders")] == "registry.local:5000/shopstack/orders:abc"


def test_helm_test_asks_readyz_through_the_gateway_service(render: Render) -> None:
    (pod,) = of_kind(render("dev"), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert containers(pod)[0]["args"][-1] == f"http://{name('gateway')}:8000/readyz"


def test_ingress_routes_only_the_public_api_to_the_gateway(render: Render) -> None:
    (ingress,) = of_kind(render("production"), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == {"/api/v1", "/.well-known/jwks.json"}
    for path in paths.values():
        assert path["backend"]["service"] == {"name": name("gateway"), "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [
        {"hosts": ["shop.example.com"], "secretName": "shop.example.com-tls"}
    ]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert of_kind(render("gateway-api"), "Ingress") == []


def test_httproute_is_gateway_api_v1_with_the_parents_from_values(render: Render) -> None:
    (route,) = of_kind(render("gateway-api"), "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [
        {"name": "shopstack", "namespace": "nginx-gateway", "sectionName": "https"}
    ]
    (rule,) = route["spec"]["rules"]
    assert {(m["path"]["type"], m["path"]["value"]) for m in rule["matches"]} == {
        ("PathPrefix", "/api/v1"),
        ("Exact", "/.well-known/jwks.json"),
        ("PathPrefix", "/docs"),
        ("Exact", "/openapi.json"),
    }
    assert rule["backendRefs"] == [{"name": name("gateway"), "port": 8000}]
    assert of_kind(render("dev"), "HTTPRoute") == []


def test_service_monitors_scrape_the_metrics_port_when_asked(render: Render) -> None:
    assert of_kind(render("dev"), "ServiceMonitor") == []
    for deployment in of_kind(render("dev"), "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == "9090"
    monitors = of_kind(render("production"), "ServiceMonitor")
    # The outbox relay serves only /metrics, and is scraped like the services.
    assert {m["metadata"]["name"] for m in monitors} == {
        name(c) for c in [*SERVICES, "orders-relay"]
    }
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_the_prometheus_rule_is_monitoring_s_rules_and_alerts_group_for_group(
    render: Render,
) -> None:
    assert of_kind(render("dev"), "PrometheusRule") == []
    (rule,) = of_kind(render("gateway-api"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    expected = [
        group
        for folder in ("rules", "alerts")
        for path in sorted((MONITORING / folder).glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    assert expected
    assert rule["spec"]["groups"] == expected


def test_dashboards_are_config_maps_for_grafana_s_sidecar(render: Render) -> None:
    def dashboards(docs: list[Manifest]) -> list[Manifest]:
        return [
            d
            for d in of_kind(docs, "ConfigMap")
            if "grafana_dashboard" in d["metadata"].get("labels", {})
        ]

    assert dashboards(render("dev")) == []
    found = dashboards(render("gateway-api"))
    generated = {
        p.name: json.loads(p.read_text())
        for p in (MONITORING / "dashboards" / "generated").glob("*.json")
    }
    assert len(found) == len(generated) == 5
    for config_map in found:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Shop"
        ((key, text),) = config_map["data"].items()
        assert json.loads(text) == generated[key]
        assert config_map["metadata"]["name"] == name(
            f"dashboard-{key.removesuffix('.json').removeprefix('shopstack-')}"
        )


def test_exporters_run_beside_the_in_chart_data_stores_as_the_jobs_the_rules_read(
    render: Render,
) -> None:
    dev = render("dev")
    for store in ("postgresql", "redis"):
        assert [c["name"] for c in containers(named(dev, "StatefulSet", name(store)))] == [store]
    docs = render("in-chart-databases")
    for store, exporter, port, job in (
        ("postgresql", "postgres-exporter", 9187, "postgres"),
        ("redis", "redis-exporter", 9121, "redis"),
    ):
        sidecar = {c["name"]: c for c in containers(named(docs, "StatefulSet", name(store)))}[
            exporter
        ]
        assert sidecar["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
        service = named(docs, "Service", name(store))
        assert {
            "name": "metrics",
            "port": port,
            "targetPort": "metrics",
            "protocol": "TCP",
        } in service["spec"]["ports"]
        policy = named(docs, "NetworkPolicy", name(store))
        assert [{"port": port, "protocol": "TCP"}] in [
            rule["ports"] for rule in policy["spec"]["ingress"]
        ]
        monitor = named(docs, "ServiceMonitor", name(store))
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics"
        assert {"targetLabel": "job", "replacement": job} in endpoint["relabelings"]


def test_escape_hatches(render: Render) -> None:
    docs = render("gateway-api")
    gateway = named(docs, "Deployment", name("gateway"))
    template = gateway["spec"]["template"]
    assert template["metadata"]["annotations"]["example.com/owner"] == "platform"
    assert template["metadata"]["labels"]["example.com/team"] == "platform"
    assert pod_spec(gateway)["priorityClassName"] == "shopstack-edge"
    assert pod_spec(gateway)["tolerations"][0]["key"] == "dedicated"
    (users,) = containers(named(docs, "Deployment", name("users")))
    assert env_of(users)["ACCESS_TOKEN_TTL_SECONDS"]["value"] == "600"
    extra = named(docs, "ConfigMap", "shop-extra")
    assert extra["metadata"]["namespace"] == NAMESPACE


def test_notes_say_how_to_reach_it_and_get_the_first_admin(helm: Path) -> None:
    result = run_helm(
        helm,
        "install",
        "shop",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "-f",
        str(VALUES["dev"]),
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"port-forward service/{name('gateway')} 8080:8000" in notes
    assert f"get secret {name('users-admin')}" in notes
    assert "helm test shop" in notes
