"""Authentication at the edge: attacks are refused before any upstream hears of them, the
verified identity reaches upstreams in the agreed headers, and client-sent ones never do."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shopstack_devstack.ports import free_port

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
UpstreamServer = Callable[[web.Application], AbstractAsyncContextManager[str]]


class Recorder:
    """An upstream that answers 200 and remembers the headers of every request it got."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            self.seen.append({k.lower(): v for k, v in request.headers.items()})
            return web.json_response({"path": request.path})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, recorder: Recorder
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_upstream(recorder.app()) as upstream,
        make_gateway({"users": upstream, "orders": upstream}) as client,
    ):
        yield client


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def alg_none(issuer: Any) -> str:
    return _unsigned({"alg": "none", "typ": "at+jwt", "kid": issuer.kid}, issuer.claims()) + "."


def hs256_with_public_key(encoding: Encoding, format_: PublicFormat) -> Callable[[Any], str]:
    """The classic confusion attack: HMAC keyed with the verifier's public key."""

    def forge(issuer: Any) -> str:
        secret = issuer.key.public_key().public_bytes(encoding, format_)
        header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}
        signing_input = _unsigned(header, issuer.claims())
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64(signature)

    return forge


def tampered(issuer: Any) -> str:
    header, _payload, signature = issuer.mint().split(".")
    forged = _b64(json.dumps(issuer.claims(roles=["admin"])).encode())
    return f"{header}.{forged}.{signature}"


def other_key_same_kid(issuer: Any) -> str:
    return jwt.encode(
        issuer.claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA",
        headers={"kid": issuer.kid, "typ": "at+jwt"},
    )  # fmt: skip


ATTACKS: dict[str, Callable[[Any], str]] = {
    "malformed": lambda issuer: "not-a-jwt",
    "three garbage parts": lambda issuer: "aaa.bbb.ccc",
    "alg none": alg_none,
    "hs256 keyed with the PEM public key": hs256_with_public_key(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    ),
    "hs256 keyed with the raw public key": hs256_with_public_key(Encoding.Raw, PublicFormat.Raw),
    "expired": lambda issuer: issuer.mint(exp=int(time.time()) - 3600),
    "not yet valid": lambda issuer: issuer.mint(nbf=int(time.time()) + 3600),
    "issued in the future": lambda issuer: issuer.mint(iat=int(time.time()) + 3600),
    "wrong iss": lambda issuer: issuer.mint(iss="someone-else"),
    "wrong aud": lambda issuer: issuer.mint(aud="another-api"),
    "unknown kid": lambda issuer: issuer.mint(headers={"kid": "no-such-key"}),
    "no kid": lambda issuer: jwt.encode(
        issuer.claims(), issuer.key, algorithm="EdDSA", headers={"typ": "at+jwt"}
    ),
    "tampered payload": tampered,
    "signed by another key under our kid": other_key_same_kid,
    "typ JWT, not at+jwt": lambda issuer: issuer.mint(headers={"typ": "JWT"}),
    "no typ": lambda issuer: jwt.encode(
        issuer.claims(), issuer.key, algorithm="EdDSA", headers={"kid": issuer.kid}
    ),
    "no jti": lambda issuer: issuer.mint(jti=None),
    "no exp": lambda issuer: issuer.mint(exp=None),
    "roles not a list": lambda issuer: issuer.mint(roles="admin"),
    "header injection in a role": lambda issuer: issuer.mint(roles=["customer\r\nX-Evil: 1"]),
    "sub neither a user id nor the client": lambda issuer: issuer.mint(sub="root"),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
async def test_bad_tokens_are_401_and_never_reach_an_upstream(
    gateway: httpx.AsyncClient, issuer: Any, recorder: Recorder, attack: Callable[[Any], str]
) -> None:
    response = await gateway.get(
        "/api/v1/orders", headers={"Authorization": f"Bearer {attack(issuer)}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="shopstack"')
    assert 'error="invalid_token"' in challenge
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert recorder.seen == []


async def test_no_token_on_a_protected_route_is_401_with_a_bare_challenge(
    gateway: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await gateway.post("/api/v1/products", json={})
    assert response.status_code == 401
    # RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
    assert response.headers["www-authenticate"] == 'Bearer realm="shopstack"'
    assert response.json()["type"].endswith("/authentication-required")
    assert recorder.seen == []


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_no_usable_bearer_token_on_a_protected_route_is_401(
    gateway: httpx.AsyncClient, recorder: Recorder, authorization: str
) -> None:
    response = await gateway.get("/api/v1/users/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert recorder.seen == []


async def test_two_bearer_tokens_are_refused(
    gateway: httpx.AsyncClient, issuer: Any, recorder: Recorder
) -> None:
    token = issuer.mint()
    response = await gateway.get(
        "/api/v1/orders",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert response.status_code == 401
    assert recorder.seen == []


async def test_a_user_token_becomes_the_agreed_identity_headers(
    gateway: httpx.AsyncClient, issuer: Any, recorder: Recorder
) -> None:
    user_id, jti = str(uuid.uuid4()), uuid.uuid4().hex
    token = issuer.mint(sub=user_id, jti=jti, roles=["customer", "admin"], scope="b a")
    response = await gateway.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    seen = recorder.seen[-1]
    assert seen["x-shopstack-user-id"] == user_id
    assert seen["x-shopstack-client-id"] == "web"
    assert seen["x-shopstack-roles"] == "admin,customer"
    assert seen["x-shopstack-scopes"] == "a b"
    assert seen["x-shopstack-token-id"] == jti


async def test_a_client_credentials_token_carries_no_user(
    gateway: httpx.AsyncClient, issuer: Any, recorder: Recorder
) -> None:
    token = issuer.mint(sub="reporting", client_id="reporting", roles=[], scope="orders:read")
    response = await gateway.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    seen = recorder.seen[-1]
    assert "x-shopstack-user-id" not in seen
    assert seen["x-shopstack-client-id"] == "reporting"
    assert seen["x-shopstack-roles"] == ""


async def test_small_clock_skew_is_tolerated(gateway: httpx.AsyncClient, issuer: Any) -> None:
    now = int(time.time())
    late = issuer.mint(exp=now - 10)  # expired 10 s ago: within the 30 s leeway
    early = issuer.mint(nbf=now + 10, iat=now + 10)
    for token in (late, early):
        response = await gateway.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


SPOOFED = {
    "X-Shopstack-User-Id": "00000000-0000-0000-0000-000000000001",
    "X-Shopstack-Roles": "admin",
    "X-Shopstack-Client-Id": "trusted-backend",
    "x-shopstack-anything-else": "1",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/products"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/register"),
        ("GET", "/.well-known/jwks.json"),
        ("POST", "/admin/login"),
    ],
)
async def test_spoofed_identity_headers_never_reach_upstreams_on_public_routes(
    gateway: httpx.AsyncClient, recorder: Recorder, method: str, path: str
) -> None:
    response = await gateway.request(method, path, headers=SPOOFED)
    assert response.status_code == 200
    assert not any(name.startswith("x-shopstack-") for name in recorder.seen[-1])


async def test_spoofed_identity_headers_are_replaced_by_the_verified_ones(
    gateway: httpx.AsyncClient, issuer: Any, recorder: Recorder
) -> None:
    user_id = str(uuid.uuid4())
    headers = {**SPOOFED, **issuer.bearer(sub=user_id)}
    response = await gateway.post("/api/v1/orders", json={}, headers=headers)
    assert response.status_code == 200
    seen = recorder.seen[-1]
    assert seen["x-shopstack-user-id"] == user_id
    assert seen["x-shopstack-roles"] == "customer"
    assert seen["x-shopstack-client-id"] == "web"
    assert "x-shopstack-anything-else" not in seen


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/revoke"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/v1/products"),
        ("GET", "/api/v1/products/8c6ab0c4-33b8-4a0d-a3ad-44c3c1c6b0a6"),
        ("HEAD", "/api/v1/products"),
        ("GET", "/admin"),
        ("GET", "/admin/users/8c6ab0c4-33b8-4a0d-a3ad-44c3c1c6b0a6"),
        ("POST", "/admin/login"),
    ],
)
async def test_public_routes_need_no_token(
    gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await gateway.request(method, path)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/products"),
        ("PATCH", "/api/v1/products/8c6ab0c4-33b8-4a0d-a3ad-44c3c1c6b0a6"),
        ("GET", "/api/v1/orders"),
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/users/8c6ab0c4-33b8-4a0d-a3ad-44c3c1c6b0a6"),
        ("POST", "/.well-known/jwks.json"),
        ("GET", "/api/v1/me/overview"),
    ],
)
async def test_everything_else_needs_a_token(
    gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await gateway.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_client_authentication_reaches_the_token_endpoint_untouched(
    gateway: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic cmVwb3J0aW5nOnNlY3JldA=="},
    )
    assert response.status_code == 200
    assert recorder.seen[-1]["authorization"] == "Basic cmVwb3J0aW5nOnNlY3JldA=="


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, recorder: Recorder, issuer: Any
) -> None:
    async with (
        serve_upstream(recorder.app()) as upstream,
        # Refetches allowed at once, so the test need not wait out the interval.
        make_gateway(
            {"users": upstream, "orders": upstream}, jwks_min_refresh_seconds=0.001
        ) as client,
    ):
        assert (await client.get("/api/v1/orders", headers=issuer.bearer())).status_code == 200
        fetches = issuer.fetches
        # users rotates: a new key is published and signs from now on.
        issuer.key, issuer.kid = Ed25519PrivateKey.generate(), "rotated-key"
        response = await client.get("/api/v1/orders", headers=issuer.bearer())
        assert response.status_code == 200
        assert issuer.fetches == fetches + 1


async def test_bogus_key_ids_cannot_hammer_the_jwks(
    gateway: httpx.AsyncClient, issuer: Any
) -> None:
    assert (await gateway.get("/api/v1/orders", headers=issuer.bearer())).status_code == 200
    fetches = issuer.fetches
    for _ in range(30):
        token = issuer.mint(headers={"kid": uuid.uuid4().hex})
        response = await gateway.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    # One refetch at most inside the refresh interval, however many unknown key ids arrive.
    assert issuer.fetches - fetches <= 1


async def test_unreachable_keys_are_a_503_not_a_401(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, recorder: Recorder, issuer: Any
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    async with (
        serve_upstream(recorder.app()) as upstream,
        make_gateway({"users": upstream, "orders": upstream}, jwks_url=nowhere) as client,
    ):
        response = await client.get("/api/v1/orders", headers=issuer.bearer())
        assert response.status_code == 503
        assert response.json()["type"].endswith("/token-keys-unavailable")
        assert int(response.headers["retry-after"]) >= 1
        # Public routes do not need the keys.
        assert (await client.get("/api/v1/products")).status_code == 200


async def test_the_access_log_line_names_the_caller_and_the_upstream(
    make_gateway: GatewayFactory,
    serve_upstream: UpstreamServer,
    recorder: Recorder,
    issuer: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user_id = str(uuid.uuid4())
    # Started inside the test, so its JSON log handler writes to the stdout capsys captures.
    async with (
        serve_upstream(recorder.app()) as upstream,
        make_gateway({"users": upstream, "orders": upstream}) as client,
    ):
        response = await client.get(
            "/api/v1/orders?limit=5",
            headers={**issuer.bearer(sub=user_id), "X-Request-ID": "log-1"},
        )
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    [access] = [line for line in lines if line["logger"] == "shopstack.access"]
    assert access["method"] == "GET"
    assert access["route"] == "/api/v1/orders/*"
    assert access["path"] == "/api/v1/orders"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert access["upstream"] == "orders"
    assert access["request_id"] == "log-1"
    assert access["user_id"] == user_id
    assert len(access["trace_id"]) == 32
