"""Authentication: the middleware on its own (HTTP and WebSocket scopes), then through the
gateway, where every token attack is refused before any upstream hears of it and the verified
identity reaches upstreams in the agreed headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shopstack_common.asgi import Receive, Scope, Send
from shopstack_common.identity import Identity
from shopstack_common.problems import ProblemError
from shopstack_gateway.events.tickets import TicketStore
from shopstack_gateway.keys import JwksDocument, KeySet
from shopstack_gateway.middleware.authentication import (
    AuthenticationMiddleware,
    authentication_refusal,
    scope_identity,
)
from shopstack_gateway.tokens import TokenVerifier

from ..conftest import (
    NOWHERE,
    GatewayAppFactory,
    GatewayFactory,
    Issuer,
    Recorder,
    UpstreamServer,
    client_of,
    websocket_handshake,
)

# -- the middleware on its own --------------------------------------------------------


def verifier_for(issuer: Issuer, *, reachable: bool = True) -> TokenVerifier:
    async def fetch() -> JwksDocument:
        if not reachable:
            raise ConnectionError("users is down")
        return JwksDocument(body=issuer.jwks, max_age=300)

    keys = KeySet(
        fetch,
        algorithms=frozenset({"EdDSA"}),
        default_ttl=300,
        min_ttl=30,
        max_ttl=3600,
        min_refresh_seconds=5,
    )
    return TokenVerifier(
        keys,
        issuer="shopstack",
        audience="shopstack-api",
        algorithms=frozenset({"EdDSA"}),
        leeway_seconds=30,
    )


class Outcome:
    """The next app in the chain: what authentication left in the scope."""

    def __init__(self) -> None:
        self.identity: Identity | None = None
        self.refusal: ProblemError | None = None
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        self.identity = scope_identity(scope)
        self.refusal = authentication_refusal(scope)
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


def no_tickets() -> TicketStore:
    raise AssertionError("a request with a bearer token or none never redeems a ticket")


async def authenticate(kind: str, headers: dict[str, str], verifier: TokenVerifier) -> Outcome:
    outcome = Outcome()
    app = AuthenticationMiddleware(outcome, verifier=lambda: verifier, tickets=no_tickets)
    if kind == "websocket":
        assert (await websocket_handshake(app, "/ws", headers=headers.items())).accepted
    else:
        async with client_of(app) as client:
            assert (await client.get("/x", headers=headers)).status_code == 204
    assert outcome.called
    return outcome


SCOPE_KINDS = pytest.mark.parametrize("kind", ["http", "websocket"])


@SCOPE_KINDS
async def test_a_valid_token_becomes_the_scopes_identity(kind: str, issuer: Issuer) -> None:
    user_id = uuid.uuid4()
    outcome = await authenticate(kind, issuer.bearer(sub=str(user_id)), verifier_for(issuer))
    assert outcome.identity is not None
    assert outcome.identity.user_id == user_id
    assert outcome.refusal is None


@SCOPE_KINDS
async def test_a_bad_token_is_a_refusal_for_later(kind: str, issuer: Issuer) -> None:
    bad = issuer.bearer(exp=int(time.time()) - 3600)
    outcome = await authenticate(kind, bad, verifier_for(issuer))
    assert outcome.identity is None
    assert outcome.refusal is not None
    assert outcome.refusal.status == 401
    assert outcome.refusal.problem.slug == "invalid-token"
    assert 'error="invalid_token"' in outcome.refusal.headers["WWW-Authenticate"]


@SCOPE_KINDS
async def test_unreachable_keys_are_a_503_refusal(kind: str, issuer: Issuer) -> None:
    outcome = await authenticate(kind, issuer.bearer(), verifier_for(issuer, reachable=False))
    assert outcome.refusal is not None
    assert outcome.refusal.problem.slug == "token-keys-unavailable"
    assert int(outcome.refusal.headers["Retry-After"]) >= 1


@SCOPE_KINDS
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}])
async def test_no_bearer_token_is_neither_identity_nor_refusal(
    kind: str, headers: dict[str, str], issuer: Issuer
) -> None:
    outcome = await authenticate(kind, headers, verifier_for(issuer))
    assert (outcome.identity, outcome.refusal) == (None, None)


# -- through the gateway ----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def alg_none(issuer: Issuer) -> str:
    return _unsigned({"alg": "none", "typ": "at+jwt", "kid": issuer.kid}, issuer.claims()) + "."


def hs256_with_public_key(encoding: Encoding, format_: PublicFormat) -> Callable[[Issuer], str]:
    """The classic confusion attack: HMAC keyed with the verifier's public key."""

    def forge(issuer: Issuer) -> str:
        secret = issuer.key.public_key().public_bytes(encoding, format_)
        header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}
        signing_input = _unsigned(header, issuer.claims())
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64(signature)

    return forge


def tampered(issuer: Issuer) -> str:
    header, _payload, signature = issuer.mint().split(".")
    forged = _b64(json.dumps(issuer.claims(roles=["admin"])).encode())
    return f"{header}.{forged}.{signature}"


def other_key_same_kid(issuer: Issuer) -> str:
    return jwt.encode(
        issuer.claims(),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": issuer.kid, "typ": "at+jwt"},
    )


ATTACKS: dict[str, Callable[[Issuer], str]] = {
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
    recorded_gateway: httpx.AsyncClient,
    issuer: Issuer,
    recorder: Recorder,
    attack: Callable[[Issuer], str],
) -> None:
    response = await recorded_gateway.get(
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
    recorded_gateway: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await recorded_gateway.post("/api/v1/products", json={})
    assert response.status_code == 401
    # RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
    assert response.headers["www-authenticate"] == 'Bearer realm="shopstack"'
    assert response.json()["type"].endswith("/authentication-required")
    assert recorder.seen == []


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_no_usable_bearer_token_on_a_protected_route_is_401(
    recorded_gateway: httpx.AsyncClient, recorder: Recorder, authorization: str
) -> None:
    response = await recorded_gateway.get(
        "/api/v1/users/me", headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert recorder.seen == []


async def test_two_bearer_tokens_are_refused(
    recorded_gateway: httpx.AsyncClient, issuer: Issuer, recorder: Recorder
) -> None:
    token = issuer.mint()
    response = await recorded_gateway.get(
        "/api/v1/orders",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert response.status_code == 401
    assert recorder.seen == []


async def test_a_user_token_becomes_the_agreed_identity_headers(
    recorded_gateway: httpx.AsyncClient, issuer: Issuer, recorder: Recorder
) -> None:
    user_id, jti = str(uuid.uuid4()), uuid.uuid4().hex
    token = issuer.mint(sub=user_id, jti=jti, roles=["customer", "admin"], scope="b a")
    response = await recorded_gateway.get(
        "/api/v1/orders", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    seen = recorder.seen[-1]
    assert seen["x-shopstack-user-id"] == user_id
    assert seen["x-shopstack-client-id"] == "web"
    assert seen["x-shopstack-roles"] == "admin,customer"
    assert seen["x-shopstack-scopes"] == "a b"
    assert seen["x-shopstack-token-id"] == jti


async def test_a_client_credentials_token_carries_no_user(
    recorded_gateway: httpx.AsyncClient, issuer: Issuer, recorder: Recorder
) -> None:
    token = issuer.mint(sub="reporting", client_id="reporting", roles=[], scope="orders:read")
    response = await recorded_gateway.get(
        "/api/v1/orders", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    seen = recorder.seen[-1]
    assert "x-shopstack-user-id" not in seen
    assert seen["x-shopstack-client-id"] == "reporting"
    assert seen["x-shopstack-roles"] == ""


async def test_small_clock_skew_is_tolerated(
    recorded_gateway: httpx.AsyncClient, issuer: Issuer
) -> None:
    now = int(time.time())
    late = issuer.mint(exp=now - 10)  # expired 10 s ago: within the 30 s leeway
    early = issuer.mint(nbf=now + 10, iat=now + 10)
    for token in (late, early):
        response = await recorded_gateway.get(
            "/api/v1/orders", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200


async def test_client_authentication_reaches_the_token_endpoint_untouched(
    recorded_gateway: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await recorded_gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic cmVwb3J0aW5nOnNlY3JldA=="},
    )
    assert response.status_code == 200
    assert recorder.seen[-1]["authorization"] == "Basic cmVwb3J0aW5nOnNlY3JldA=="


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, recorder: Recorder, issuer: Issuer
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
    recorded_gateway: httpx.AsyncClient, issuer: Issuer
) -> None:
    assert (
        await recorded_gateway.get("/api/v1/orders", headers=issuer.bearer())
    ).status_code == 200
    fetches = issuer.fetches
    for _ in range(30):
        token = issuer.mint(headers={"kid": uuid.uuid4().hex})
        response = await recorded_gateway.get(
            "/api/v1/orders", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
    # One refetch at most inside the refresh interval, however many unknown key ids arrive.
    assert issuer.fetches - fetches <= 1


async def test_unreachable_keys_are_a_503_not_a_401(
    make_gateway: GatewayFactory, serve_upstream: UpstreamServer, recorder: Recorder, issuer: Issuer
) -> None:
    nowhere = f"{NOWHERE}/.well-known/jwks.json"
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
    issuer: Issuer,
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


async def test_a_websocket_upgrade_with_a_bad_token_is_refused_like_a_request(
    make_gateway_app: GatewayAppFactory,
    serve_upstream: UpstreamServer,
    recorder: Recorder,
    issuer: Issuer,
) -> None:
    async with (
        serve_upstream(recorder.app()) as upstream,
        make_gateway_app({"users": upstream, "orders": upstream}) as app,
    ):
        bad = tampered(issuer)
        refused = await websocket_handshake(
            app, "/api/v1/orders/events", headers=[("Authorization", f"Bearer {bad}")]
        )
        closed = await websocket_handshake(
            app,
            "/api/v1/orders/events",
            headers=[("Authorization", f"Bearer {bad}")],
            denial_response=False,
        )
    assert refused.status == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert refused.json()["type"] == "/problems/invalid-token"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert closed.close_code == 4401
    assert recorder.seen == []
