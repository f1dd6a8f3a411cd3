"""Dispatch: who answers. On its own, with a fake proxy and a fake own app, for HTTP requests
and WebSocket upgrades; then the token requirement of the proxied routes through the gateway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from shopstack_common.asgi import Receive, Scope, Send
from shopstack_common.identity import Identity
from shopstack_common.problems import INVALID_TOKEN, ProblemError
from shopstack_gateway.config import DEFAULT_PUBLIC_ROUTES, DEFAULT_ROUTES
from shopstack_gateway.middleware.authentication import IDENTITY_SCOPE_KEY, REFUSAL_SCOPE_KEY
from shopstack_gateway.middleware.dispatch import DispatchMiddleware
from shopstack_gateway.proxy import Proxy
from shopstack_gateway.routing import Match, PublicRoutes, RouteTable
from shopstack_gateway.websocket_proxy import WebSocketProxy

from ..conftest import Handshake, client_of, websocket_handshake

USER = Identity(user_id=uuid.uuid4(), client_id="web", roles=frozenset({"customer"}))


@dataclass
class Answerers:
    """The proxy and the own app dispatch chooses between; each says who it is."""

    proxied: list[tuple[str, Identity | None]] = field(default_factory=list)
    own: list[str] = field(default_factory=list)
    websockets: list[tuple[str, Identity | None]] = field(default_factory=list)

    async def websocket_proxy(
        self, scope: Scope, receive: Receive, send: Send, upstream: str, identity: Identity | None
    ) -> None:
        self.websockets.append((upstream, identity))
        await send({"type": "websocket.close", "code": 4000})

    async def proxy(
        self, scope: Scope, receive: Receive, send: Send, match: Match, identity: Identity | None
    ) -> None:
        self.proxied.append((match.upstream, identity))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"proxied"})

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.own.append(scope["type"])
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"own"})


class Given:
    """An app in front of dispatch that puts what authentication would have decided into the
    scope."""

    def __init__(
        self, app: DispatchMiddleware, *, identity: Identity | None, refusal: ProblemError | None
    ) -> None:
        self.app, self.identity, self.refusal = app, identity, refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.identity is not None:
            scope[IDENTITY_SCOPE_KEY] = self.identity
        if self.refusal is not None:
            scope[REFUSAL_SCOPE_KEY] = self.refusal
        await self.app(scope, receive, send)


@pytest.fixture
def answerers() -> Answerers:
    return Answerers()


def dispatch(
    answerers: Answerers, *, identity: Identity | None = None, refusal: ProblemError | None = None
) -> Given:
    def proxy() -> Proxy:
        return answerers.proxy  # type: ignore[return-value]

    def websocket_proxy() -> WebSocketProxy:
        return answerers.websocket_proxy  # type: ignore[return-value]

    app = DispatchMiddleware(
        answerers.app,
        routes=RouteTable(DEFAULT_ROUTES),
        public=PublicRoutes(DEFAULT_PUBLIC_ROUTES),
        proxy=proxy,
        websocket_proxy=websocket_proxy,
        own_paths=frozenset({"/api/v1/orders/events/ticket"}),
    )
    return Given(app, identity=identity, refusal=refusal)


async def get(app: Given, path: str, method: str = "GET") -> httpx.Response:
    async with client_of(app) as client:
        return await client.request(method, path)


async def test_a_proxied_path_goes_to_the_proxy_with_the_identity(answerers: Answerers) -> None:
    response = await get(dispatch(answerers, identity=USER), "/api/v1/orders/42")
    assert response.text == "proxied"
    assert answerers.proxied == [("orders", USER)]
    assert answerers.own == []


async def test_a_public_proxied_path_needs_no_identity(answerers: Answerers) -> None:
    response = await get(dispatch(answerers), "/api/v1/products/42")
    assert response.text == "proxied"
    assert answerers.proxied == [("orders", None)]


async def test_a_protected_proxied_path_without_identity_is_401(answerers: Answerers) -> None:
    response = await get(dispatch(answerers), "/api/v1/products", method="POST")
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/authentication-required"
    assert response.headers["www-authenticate"] == 'Bearer realm="shopstack"'
    assert answerers.proxied == []


async def test_other_paths_go_to_the_gateways_own_app(answerers: Answerers) -> None:
    response = await get(dispatch(answerers), "/openapi.json")
    assert response.text == "own"
    assert answerers.own == ["http"]


async def test_a_recorded_refusal_is_sent_before_anyone_answers(answerers: Answerers) -> None:
    refusal = ProblemError(INVALID_TOKEN, "expired", headers={"WWW-Authenticate": "Bearer"})
    for path in ("/api/v1/products", "/openapi.json"):
        response = await get(dispatch(answerers, refusal=refusal), path)
        assert response.status_code == 401
        assert response.json()["detail"] == "expired"
    assert (answerers.proxied, answerers.own) == ([], [])


async def test_the_lifespan_reaches_the_gateways_own_app(answerers: Answerers) -> None:
    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(_: object) -> None:
        pass

    await dispatch(answerers)({"type": "lifespan"}, receive, send)
    assert answerers.own == ["lifespan"]


@pytest.mark.parametrize("denial_response", [True, False], ids=["denial", "close"])
async def test_websocket_refusals(answerers: Answerers, denial_response: bool) -> None:
    async def upgrade(app: Given, path: str) -> Handshake:
        return await websocket_handshake(app, path, denial_response=denial_response)

    protected = await upgrade(dispatch(answerers), "/api/v1/orders/events")
    own = await upgrade(dispatch(answerers, identity=USER), "/docs")
    proxied = await upgrade(dispatch(answerers, identity=USER), "/api/v1/orders/events")
    if denial_response:
        assert (protected.status, own.status) == (401, 404)
        assert protected.json()["type"] == "/problems/authentication-required"
        assert own.json()["type"] == "/problems/not-found"
    else:
        assert (protected.close_code, own.close_code) == (4401, 4404)
    # The authenticated upgrade on a proxied route goes to the WebSocket proxy; the HTTP
    # proxy and FastAPI (HTTP only here) never see an upgrade.
    assert proxied.close_code == 4000
    assert answerers.websockets == [("orders", USER)]
    assert (answerers.proxied, answerers.own) == ([], [])


async def test_an_own_path_inside_a_proxied_prefix_goes_to_the_gateways_app(
    answerers: Answerers,
) -> None:
    response = await get(dispatch(answerers, identity=USER), "/api/v1/orders/events/ticket", "POST")
    assert response.text == "own"
    assert answerers.proxied == []


# -- the token requirement through the gateway ------------------------------------------


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
    recorded_gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await recorded_gateway.request(method, path)
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
    recorded_gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await recorded_gateway.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
