"""Gateway tests: upstreams are small aiohttp apps on loopback (the gateway's client is aiohttp),
tokens are signed with a key made per test and published by an in-process JWKS server."""

import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shopstack_devstack.ports import free_port
from shopstack_gateway.config import GatewaySettings, UpstreamSettings
from shopstack_gateway.main import create_app

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
UpstreamServer = Callable[[web.Application], AbstractAsyncContextManager[str]]

ISSUER = "shopstack"
AUDIENCE = "shopstack-api"
CLIENT_ADDRESS = "203.0.113.9"


@asynccontextmanager
async def serve(app: web.Application, port: int | None = None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def serve_upstream() -> UpstreamServer:
    """Serve an aiohttp app on a loopback port; yields its base URL."""
    return serve


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


@dataclass
class Issuer:
    """Signs access tokens the way users does (the contract's claims and header)."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    extra_keys: list[dict[str, str]] = field(default_factory=list)
    fetches: int = 0
    max_age: int = 300

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid), *self.extra_keys]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "client_id": "web",
            "roles": ["customer"], "scope": "orders:read orders:write", "iat": now, "nbf": now,
            "exp": now + 900, "jti": uuid.uuid4().hex,
        }  # fmt: skip
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        return jwt.encode(
            self.claims(**claims),
            self.key,
            algorithm="EdDSA",
            headers={"kid": self.kid, "typ": "at+jwt", **(headers or {})},
        )

    def bearer(self, headers: dict[str, Any] | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(headers, **claims)}"}

    def app(self) -> web.Application:
        async def jwks(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(
                self.jwks, headers={"Cache-Control": f"public, max-age={self.max_age}"}
            )

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", jwks)
        return app


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
async def jwks_url(issuer: Issuer) -> AsyncIterator[str]:
    async with serve(issuer.app()) as base:
        yield base + "/.well-known/jwks.json"


def gateway_settings(
    upstreams: dict[str, str],
    *,
    read_timeout_seconds: float = 5.0,
    upstream_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> GatewaySettings:
    """Settings for a gateway in front of ``upstreams``; ``upstream_options`` (retry, breaker,
    timeouts) apply to each of them."""
    values: dict[str, Any] = {
        # Nothing listens here: unit tests run the limiter's fail-open path. Rate limiting
        # itself is tested on the real Redis (test_ratelimit.py).
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "upstreams": {
            name: UpstreamSettings(
                url=url, read_timeout_seconds=read_timeout_seconds, **(upstream_options or {})
            )
            for name, url in upstreams.items()
        },
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.api.router.lifespan_context(app.api),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 5555)),
            base_url="http://shop.example",
        ) as client,
    ):
        yield client


@pytest.fixture
def make_gateway(jwks_url: str) -> GatewayFactory:
    """A gateway (lifespan running) in front of the given upstream URLs, trusting ``issuer``."""

    @asynccontextmanager
    async def make(upstreams: dict[str, str], **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        overrides.setdefault("jwks_url", jwks_url)
        async with running_gateway(gateway_settings(upstreams, **overrides)) as client:
            yield client

    return make
