"""`make up` end to end: the README's path through NGINX, a clean stop, a second start."""

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import jwt
import psutil
import pytest

from shopstack_devstack.ports import port_in_use

pytestmark = pytest.mark.e2e


def processes_using(data_dir: Path) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in cmdline:
            found.append(f"{process.pid}: {cmdline}")
    return found


def password_grant(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )


def verified_claims(client: httpx.Client, token: str) -> dict[str, object]:
    """Check the token as a resource server would: against the JWKS served through NGINX."""
    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, object] = jwt.decode(
        token, key.key, algorithms=["EdDSA"], audience="shopstack-api", issuer="shopstack"
    )
    return claims


def test_up_serves_through_nginx_and_stops_clean(platform) -> None:  # type: ignore[no-untyped-def]
    platform.start()
    with httpx.Client(base_url=platform.url, timeout=10) as client:
        request_id = f"e2e-{uuid.uuid4().hex}"
        created = client.post(
            "/api/v1/auth/register",
            json={
                "email": "Grace@Example.com",
                "password": "a long enough secret",
                "full_name": "Grace Hopper",
            },
            headers={"X-Request-ID": request_id},
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == request_id
        user = created.json()
        assert user["email"] == "grace@example.com"
        issued = password_grant(client, "grace@example.com", "a long enough secret")
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        claims = verified_claims(client, token)
        assert claims["sub"] == user["id"]
        assert claims["roles"] == ["customer"]
        # The development admin that `make up` bootstraps.
        admin = password_grant(client, "admin@shopstack.local", "shopstack-dev-admin")
        assert admin.status_code == 200, admin.text
        admin_roles = verified_claims(client, admin.json()["access_token"])["roles"]
        assert isinstance(admin_roles, list)
        assert "admin" in admin_roles
        # A protected route without a token is a 401 problem.
        me = client.get("/api/v1/users/me")
        assert me.status_code == 401
        assert me.headers["content-type"] == "application/problem+json"

        # Creating products is for administrators: without a token the edge refuses it; with
        # the development admin's token it goes through, and anyone can read it back.
        kettle = {"sku": "E2E-1", "name": "Kettle", "price": 2599, "currency": "EUR", "stock": 3}
        assert client.post("/api/v1/products", json=kettle).status_code == 401
        admin_token = admin.json()["access_token"]
        product = client.post(
            "/api/v1/products", json=kettle, headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert product.status_code == 201, product.text
        assert client.get(f"/api/v1/products/{product.json()['id']}").json()["name"] == "Kettle"

        bad = client.post("/api/v1/auth/register", json={"email": "nope"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert {e["field"] for e in bad.json()["errors"]} == {"email", "password", "full_name"}

        assert client.get("/api/v2/unknown").status_code == 404
        assert client.get("/metrics").status_code == 404  # not exposed at the edge
        assert client.get("/readyz").status_code == 200

    # The request id travelled NGINX -> gateway -> users, and each logged it.
    log = platform.log()
    for service in ('"service": "gateway"', '"service": "users"'):
        assert any(request_id in line and service in line for line in log.splitlines()), service

    assert platform.stop(signal.SIGTERM) == 0
    assert processes_using(platform.data_dir) == []
    assert not any(port_in_use(port) for port in platform.ports.values())

    # Second start: the data is still there.
    platform.start()
    with httpx.Client(base_url=platform.url, timeout=10) as client:
        again = password_grant(client, "grace@example.com", "a long enough secret")
        assert again.status_code == 200, again.text
        # The signing key survived the restart: the first run's token still verifies.
        assert verified_claims(client, token)["sub"] == user["id"]
    assert platform.stop(signal.SIGINT) == 0
    assert processes_using(platform.data_dir) == []

    # --fresh starts empty.
    platform.start("--fresh")
    with httpx.Client(base_url=platform.url, timeout=10) as client:
        gone = password_grant(client, "grace@example.com", "a long enough secret")
        assert gone.status_code == 400
        assert gone.json()["error"] == "invalid_grant"
    assert platform.stop() == 0
    assert not any(port_in_use(port) for port in platform.ports.values())


def test_down_stops_a_platform_running_in_the_background(platform) -> None:  # type: ignore[no-untyped-def]
    platform.start()
    down = subprocess.run(
        [sys.executable, "-m", "shopstack_devstack", "down"],
        env=platform.env(), capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    assert platform.process.wait(30) == 0, platform.log()[-4000:]
    assert platform.stop() == 0
    assert processes_using(platform.data_dir) == []
    assert not any(port_in_use(port) for port in platform.ports.values())
    assert not (platform.data_dir / "devstack.pid").exists()
    # Nothing runs any more: down says so, and succeeds.
    again = subprocess.run(
        [sys.executable, "-m", "shopstack_devstack", "down"],
        env=platform.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0
    assert "no make up runs" in again.stdout


def at_moment(moment: str, line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return all(record.get(key) == value for key, value in MOMENTS[moment].items())


# Lines that show start-up at a given point, in SHOPSTACK_LOG_FORMAT=json.
MOMENTS = {
    "postgres starting": {"service": "postgres"},
    "a migration running": {"logger": "alembic.runtime.migration"},
    "orders starting": {"service": "orders", "logger": "uvicorn.error"},
}


@pytest.mark.parametrize(
    ("moment", "not_started"),
    [
        ("postgres starting", {"users", "orders", "gateway", "nginx"}),
        ("a migration running", {"users", "orders", "gateway", "nginx"}),
        # users and orders not ready yet: the gateway must not follow.
        ("orders starting", {"gateway", "nginx"}),
    ],
)
def test_a_ctrl_c_during_start_up_stops_it_there(  # type: ignore[no-untyped-def]
    platform, moment: str, not_started: set[str]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "shopstack_devstack", "up"],
        env=platform.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if at_moment(moment, line):
            break
    else:
        pytest.fail(f"up ended before {moment}:\n" + "".join(lines))
    # Twice, as uv and the terminal both deliver it.
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    lines += process.stdout.readlines()
    process.stdout.close()
    assert process.wait(60) == 130, "".join(lines)
    messages = [json.loads(line)["message"] for line in lines if line.startswith("{")]
    stopped = {m.removeprefix("stopping ") for m in messages if m.startswith("stopping ")}
    assert stopped, "".join(lines)
    assert not stopped & not_started, "".join(lines)
    assert not any(m.startswith("shopstack is up") for m in messages)
    assert processes_using(platform.data_dir) == []
