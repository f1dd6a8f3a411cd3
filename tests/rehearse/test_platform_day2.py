"""Day-2 operations on the platform rehearsed for the production values, while a bounded load
loop runs through NGINX: a rolling restart of each Deployment, a SIGKILLed replica, a signing
key added to the Secret, and an upgrade to a new image tag with a changed ConfigMap value."""

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from shopstack_rehearse.load import Load
from tests.e2e.shopping import bearer, sign_in
from tests.rehearse.conftest import NAMESPACE, Rehearsed

pytestmark = pytest.mark.rehearse

COMPONENTS = ("gateway", "users", "orders")


def load_through(platform: Rehearsed) -> Load:
    """Reads that cross the gateway to both services: a product from orders, the signed-in
    admin from users."""
    with platform.client() as client:
        auth = bearer(sign_in(client, *platform.admin))
        products = client.get("/api/v1/products").json()["items"]
    paths = ["/api/v1/users/me"] + [f"/api/v1/products/{p['id']}" for p in products[:1]]
    return Load(platform.cluster.url, paths, headers={"Host": platform.host, **auth})


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_rolling_restart_fails_no_request(
    production: Rehearsed, component: str, figures: list[str]
) -> None:
    cluster = production.cluster
    workload = production.deployment(component)
    before = {p.name for p in cluster.pods(workload)}
    with load_through(production) as load:
        time.sleep(1)
        cluster.rolling_restart(workload)
        time.sleep(1)
    figures.append(f"rolling restart of {workload}: {load.summary()}")
    after = {p.name for p in cluster.pods(workload)}
    assert len(after) == len(before) == 2
    assert not before & after
    assert load.sent > 20
    assert load.failed == 0, load.failures[:5]


def test_a_sigkilled_replica_comes_back_through_its_probes(
    production: Rehearsed, figures: list[str]
) -> None:
    cluster = production.cluster
    victim, survivor = cluster.pods(production.deployment("gateway"))
    with load_through(production) as load:
        time.sleep(1)
        worker = cluster.kill_container(victim.name)
        deadline = time.monotonic() + 60
        while worker.restart_count == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        cluster.wait_settled()
        time.sleep(1)
    figures.append(f"SIGKILL of {victim.name}: {load.summary()}")
    assert "exited with code 137" in worker.events, worker.events
    assert cluster.pod(victim.name) is victim
    assert (victim.ready, victim.restarts, survivor.ready) == (True, 1, True)
    # Only requests that were on their way to the killed replica before the kubelet saw it
    # die can fail; the other replica carries the rest.
    assert load.sent - load.failed > 20
    assert load.failed <= 3, load.failures


def token_kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_a_new_signing_key_signs_while_the_old_tokens_stay_valid(production: Rehearsed) -> None:
    key = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    new_kid = "2099-01-01"  # sorts after every kid in use: users signs with it
    with production.client() as client:
        old = sign_in(client, *production.admin)["access_token"]
        assert token_kid(old) != new_kid
        updated = production.cluster.update_secret(
            NAMESPACE, "shopstack-signing-keys", {f"{new_kid}.pem": key}
        )
        assert updated == 2  # both users pods' key volumes
        deadline = time.monotonic() + 60
        while True:
            new = sign_in(client, *production.admin)["access_token"]
            if token_kid(new) == new_kid or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert token_kid(new) == new_kid
        kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
        assert {token_kid(old), new_kid} <= kids
        # The gateway has not seen the new kid: it fetches the JWKS again and accepts it.
        for token in (new, old):
            me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text


def test_an_upgrade_rolls_the_pods_runs_the_migrations_again_and_keeps_the_data(
    production: Rehearsed, figures: list[str]
) -> None:
    cluster = production.cluster
    with production.client() as client:
        admin = bearer(sign_in(client, *production.admin))
        product = {"sku": f"KEPT-{uuid.uuid4().hex[:6]}", "name": "Kept", "price": 100,
                   "currency": "EUR", "stock": 5}  # fmt: skip
        created = client.post("/api/v1/products", json=product, headers=admin)
        assert created.status_code == 201, created.text
        kept = created.json()["id"]
    before = {c: {p.name for p in cluster.pods(production.deployment(c))} for c in COMPONENTS}
    hooks = len(cluster.hook_runs)
    upgraded = production.render(
        "image.tag=next", "gateway.config.GATEWAY_RATE_LIMIT__ADDRESS__LIMIT=99999"
    )
    with load_through(production) as load:
        cluster.upgrade(upgraded)
    figures.append(f"upgrade under load: {load.summary()}")
    ran = [(r.phase, r.ref, r.outcome) for r in cluster.hook_runs[hooks:]]
    migrations = [r for r in ran if r[1].startswith("Job/")]
    assert [(phase, ref) for phase, ref, _ in migrations] == [
        ("pre-upgrade", f"Job/{NAMESPACE}/shopstack-users-migrate"),
        ("pre-upgrade", f"Job/{NAMESPACE}/shopstack-orders-migrate"),
    ], ran
    for component in COMPONENTS:
        pods = cluster.pods(production.deployment(component))
        assert len(pods) == 2
        assert not before[component] & {p.name for p in pods}, component
        images = {c["image"] for p in pods for c in p.spec["containers"]}
        assert images == {f"shopstack/{component}:next"}, images
    assert load.failed == 0, load.failures[:5]
    with production.client() as client:
        assert client.get(f"/api/v1/products/{kept}").json()["sku"] == product["sku"]
        answer = client.get(f"/api/v1/products/{uuid.uuid4()}")
        assert answer.headers["ratelimit-policy"].startswith('"address";q=99999;'), answer.headers
        assert sign_in(client, *production.admin)["access_token"]
