"""schemathesis against the gateway's own app, in process, through the merged document: every
default check, every phase including the stateful one, with a user's token.

The upstreams are small in-process FastAPI apps on loopback that keep to the contracts the
gateway relies on (the overview's parts, identity in headers) and whose documents exercise the
merge: an operationId both use (``read``), and links that must follow its rename. What the
run proves is the gateway's side of the contract: its own routes, and its own answers on the
proxied ones (401 without a token, the RateLimit fields, problem+json errors).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
import schemathesis
from fastapi import FastAPI, Header, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.python.asgi import shutdown_lifespans
from starlette.routing import Match

from shopstack_common.asgi import Message, Receive, Scope, Send
from shopstack_common.fastapi_adapter import install_problem_handlers, install_problem_openapi
from shopstack_common.problems import EMAIL_TAKEN, NOT_FOUND, ProblemError
from shopstack_gateway.main import create_app
from shopstack_gateway.overview.schemas import ProfilePublic

from .conftest import Issuer, gateway_settings, serve_with_uvicorn

pytestmark = pytest.mark.timeout(600)

UserIdHeader = Annotated[uuid.UUID, Header(alias="X-Shopstack-User-Id")]


# FastAPI answers 400 to a body it cannot decode; a service that accepts bodies says so.
UNDECODABLE: dict[int | str, dict[str, Any]] = {400: {"description": "The body is not valid JSON."}}


class AllowEveryMethod:
    """Starlette answers a 405 with the methods of the first route on the path only; ``Allow``
    must name those of every route there."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = sorted(
                    method
                    for route in self.app.routes
                    if isinstance(route, APIRoute) and route.matches(scope)[0] is not Match.NONE
                    for method in route.methods or ()
                )
                headers = [(k, v) for k, v in message["headers"] if k != b"allow"]
                message = {
                    **message,
                    "headers": [*headers, (b"allow", ", ".join(methods).encode())],
                }
            await send(message)

        await self.app(scope, receive, send_allow if scope["type"] == "http" else send)


def fake_service(title: str) -> FastAPI:
    app = FastAPI(
        title=title,
        telemetry={"tracing": False},
        generate_unique_id_function=lambda route: route.name,
    )
    install_problem_handlers(app)
    install_problem_openapi(app)
    return app


# -- users ----------------------------------------------------------------------------------


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=r"^[a-z0-9]{1,20}@[a-z]{1,10}\.example$")
    full_name: str = Field(min_length=1, max_length=50)


def fake_users() -> FastAPI:
    app = fake_service("users")
    accounts: dict[uuid.UUID, ProfilePublic] = {}

    @app.post(
        "/api/v1/auth/register",
        status_code=201,
        responses={**UNDECODABLE, 409: {"description": "The email is taken."}},
        openapi_extra={
            "responses": {
                "201": {
                    "links": {
                        "ReadAccount": {
                            "operationId": "read",
                            "parameters": {"user_id": "$response.body#/id"},
                        }
                    }
                }
            }
        },
    )
    async def register(registration: Registration) -> ProfilePublic:
        if any(account.email == registration.email for account in accounts.values()):
            raise ProblemError(EMAIL_TAKEN, "Taken.")
        now = datetime.now(UTC)
        account = ProfilePublic(
            id=uuid.uuid4(),
            roles=["customer"],
            created_at=now,
            updated_at=now,
            **registration.model_dump(),
        )
        accounts[account.id] = account
        return account

    @app.get("/api/v1/users/me")
    async def me(user_id: UserIdHeader) -> ProfilePublic:
        now = datetime.now(UTC)
        return accounts.get(user_id) or ProfilePublic(
            id=user_id,
            email="me@shop.example",
            full_name="Me",
            roles=["customer"],
            created_at=now,
            updated_at=now,
        )

    @app.get("/api/v1/users/{user_id}", responses={404: {"description": "No such account."}})
    async def read(user_id: uuid.UUID) -> ProfilePublic:
        if user_id not in accounts:
            raise ProblemError(NOT_FOUND, "No such account.")
        return accounts[user_id]

    return app


# -- orders ---------------------------------------------------------------------------------


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    price: int = Field(ge=0, le=1_000_000)

    @field_validator("price", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        """JSON Schema's integer is not a boolean (pydantic would take ``false`` for 0)."""
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return value


class Product(ProductIn):
    id: uuid.UUID


class Products(BaseModel):
    items: list[Product]


class Orders(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Summary(BaseModel):
    counts_by_status: dict[str, int]
    total: int


def fake_orders() -> FastAPI:
    app = fake_service("orders")
    products: dict[uuid.UUID, Product] = {}

    @app.get("/api/v1/products")
    async def list_products() -> Products:
        return Products(items=list(products.values()))

    @app.post(
        "/api/v1/products",
        status_code=201,
        responses=UNDECODABLE,
        openapi_extra={
            "responses": {
                "201": {
                    "links": {
                        "ReadProduct": {
                            "operationId": "read",
                            "parameters": {"product_id": "$response.body#/id"},
                        }
                    }
                }
            }
        },
    )
    async def create_product(product: ProductIn) -> Product:
        created = Product(id=uuid.uuid4(), **product.model_dump())
        products[created.id] = created
        return created

    # The same operationId as users' account read: the merged document renames this one.
    @app.get("/api/v1/products/{product_id}", responses={404: {"description": "No such product."}})
    async def read(product_id: uuid.UUID) -> Product:
        if product_id not in products:
            raise ProblemError(NOT_FOUND, "No such product.")
        return products[product_id]

    @app.get("/api/v1/orders")
    async def list_orders(
        _: UserIdHeader, limit: Annotated[int, Query(ge=1, le=50)] = 20
    ) -> Orders:
        return Orders(items=[], next_cursor=None)

    @app.get("/api/v1/orders/summary")
    async def order_summary(_: UserIdHeader) -> Summary:
        return Summary(counts_by_status={}, total=0)

    return app


# -- the run --------------------------------------------------------------------------------


@dataclass
class RunResult:
    operations: set[str] = field(default_factory=set)
    test_cases: int = 0
    phases: dict[str, Status] = field(default_factory=dict)
    links: int = 0
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_schemathesis(app: Any, token: str) -> RunResult:
    config = SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": 30},
            "phases": {"stateful": {"max-steps": 20}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    result = RunResult()
    try:
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, events.PhaseStarted) and event.payload is not None:
                result.links = event.payload.transitions_total - event.payload.inferred_transitions
            elif isinstance(event, events.PhaseFinished):
                result.phases[event.phase.name.value] = event.status
            elif isinstance(event, events.ScenarioFinished):
                result.test_cases += len(event.recorder.cases)
                result.operations.add(event.recorder.label)
                result.failures += [
                    f"{event.recorder.label}: {check.name}: {check.failure_info.failure}\n"
                    f"{check.failure_info.code_sample}"
                    for checks in event.recorder.checks.values()
                    for check in checks
                    if check.status == Status.FAILURE and check.failure_info is not None
                ]
            elif isinstance(event, events.NonFatalError | events.FatalError):
                result.errors.append(repr(event))
    finally:
        shutdown_lifespans()
    return result


async def test_schemathesis_finds_nothing(jwks_url: str, redis_url: str, issuer: Issuer) -> None:
    async with (
        serve_with_uvicorn(AllowEveryMethod(fake_users())) as users,
        serve_with_uvicorn(AllowEveryMethod(fake_orders())) as orders,
    ):
        settings = gateway_settings(
            {"users": f"http://{users}", "orders": f"http://{orders}"},
            jwks_url=jwks_url,
            redis_url=redis_url,
            rate_limit={"address": {"limit": 10**6}, "user": {"limit": 10**6}},
        )
        token = issuer.mint(exp=int(datetime.now(UTC).timestamp()) + 3600)
        result = await asyncio.to_thread(run_schemathesis, create_app(settings), token)
    print(
        f"schemathesis: {len(result.operations) - 1} operations, {result.test_cases} test cases, "
        f"{result.links} links; phases {result.phases}"
    )
    assert result.errors == []
    assert result.failures == [], "\n\n".join(result.failures)
    assert result.operations == {
        "GET /api/v1/me/overview",
        "GET /problems",
        "GET /problems/{slug}",
        "POST /api/v1/auth/register",
        "GET /api/v1/users/me",
        "GET /api/v1/users/{user_id}",
        "GET /api/v1/products",
        "POST /api/v1/products",
        "GET /api/v1/products/{product_id}",
        "GET /api/v1/orders",
        "GET /api/v1/orders/summary",
        "Stateful tests",
    }
    # The documents carry no examples, so that phase has nothing to run.
    assert result.phases["examples"] in (Status.SUCCESS, Status.SKIP)
    for phase in ("coverage", "fuzzing", "stateful"):
        assert result.phases[phase] == Status.SUCCESS, phase
    # Both services' links survived the merge, the one to the renamed operationId included.
    assert result.links == 2
