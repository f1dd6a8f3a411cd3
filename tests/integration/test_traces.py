"""One trace per request across the platform, on the real PostgreSQL and Redis: the gateway's
SERVER span, its CLIENT span for the upstream attempt, the upstream's SERVER span, and the
upstream's PostgreSQL and Redis CLIENT spans, linked parent to child by their ids.

The three apps share this process and its tracer provider; an in-memory exporter beside it
collects their spans. A span's service is the one whose SERVER span it is under: the gateway's
at the root, and below a gateway CLIENT span the upstream it names (``shopstack.upstream``).
The test prints the trees (service → span names)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shopstack_common.telemetry import configure_tracing
from shopstack_devstack.tokens import TokenIssuer
from shopstack_users.keys import write_new_key

from .conftest import GatewayFactory, OrdersServer, UsersServer, users_settings

PRODUCT = {"name": "Teapot", "price": 1800, "currency": "EUR", "stock": 5}


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    configure_tracing("integration", None)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), provider
    collected = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(collected))
    return collected


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def signing_users(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[UsersServer]:
    """The real users app, with a key to sign the tokens it issues."""
    keys = tmp_path / "keys"
    write_new_key(keys, "2026-11-01")
    server = UsersServer(users_settings(database_url, redis_url, jwt_signing_keys_dir=keys))
    yield server
    server.stop()


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, orders: OrdersServer, signing_users: UsersServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_gateway({"users": signing_users.url, "orders": orders.url}) as client:
        yield client


class Tree:
    """The spans of one trace, by id, with the service each belongs to."""

    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = {span.context.span_id: span for span in spans}
        self.children: dict[int | None, list[ReadableSpan]] = {}
        for span in sorted(spans, key=lambda s: s.start_time or 0):
            parent = span.parent.span_id if span.parent is not None else None
            self.children.setdefault(parent, []).append(span)

    @property
    def root(self) -> ReadableSpan:
        (root,) = self.children[None]
        return root

    def service(self, span: ReadableSpan) -> str:
        while span.parent is not None:
            parent = self.spans[span.parent.span_id]
            if span.kind is SpanKind.SERVER and parent.kind is SpanKind.CLIENT:
                return str(parent.attributes["shopstack.upstream"])  # type: ignore[index]
            span = parent
        return "gateway"

    def below(self, span: ReadableSpan, kind: SpanKind) -> list[ReadableSpan]:
        return [
            child for child in self.children.get(span.context.span_id, []) if child.kind is kind
        ]

    def descendants(self, span: ReadableSpan) -> Iterator[ReadableSpan]:
        for child in self.children.get(span.context.span_id, []):
            yield child
            yield from self.descendants(child)

    def render(self, span: ReadableSpan | None = None, depth: int = 0) -> list[str]:
        span = span or self.root
        lines = [f"{'  ' * depth}{self.service(span)} → {span.name} ({span.kind.name})"]
        for child in self.children.get(span.context.span_id, []):
            lines += self.render(child, depth + 1)
        return lines


async def one_trace(spans: InMemorySpanExporter, servers: int) -> Tree:
    """The trace, once its ``servers`` SERVER spans have ended: users' ends when its WSGI
    server closes the answer, which may be a moment after the client has it."""
    for _ in range(200):
        finished = list(spans.get_finished_spans())
        if sum(span.kind is SpanKind.SERVER for span in finished) >= servers:
            break
        await asyncio.sleep(0.05)
    assert finished
    assert len({span.context.trace_id for span in finished}) == 1, "one trace throughout"
    return Tree(finished)


def assert_edges_into(tree: Tree, upstream: str) -> list[ReadableSpan]:
    """gateway SERVER → gateway CLIENT → upstream SERVER; returns the upstream's spans."""
    root = tree.root
    assert root.kind is SpanKind.SERVER
    assert tree.service(root) == "gateway"
    # The gateway's own CLIENT spans: the upstream attempt, and its rate-limit check in Redis.
    attempts = [
        s for s in tree.below(root, SpanKind.CLIENT) if "shopstack.upstream" in (s.attributes or {})
    ]
    (attempt,) = attempts
    assert attempt.attributes is not None
    assert attempt.attributes["shopstack.upstream"] == upstream
    assert redis_spans(tree.below(root, SpanKind.CLIENT)), "the rate-limit check in Redis"
    assert attempt.attributes["http.response.status_code"] == 200
    (served,) = tree.below(attempt, SpanKind.SERVER)
    assert tree.service(served) == upstream
    assert served.attributes is not None
    # Stable HTTP semantic conventions (OTEL_SEMCONV_STABILITY_OPT_IN=http).
    assert served.attributes["http.request.method"] in {"GET", "POST"}
    assert "http.method" not in served.attributes
    # Named by its route template, never by a path with an id in it.
    route = served.attributes["http.route"]
    assert served.name == f"{served.attributes['http.request.method']} {route}"
    return list(tree.descendants(served))


def database_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT and (s.attributes or {}).get("db.system.name") == "postgresql"
    ]


def redis_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT and (s.attributes or {}).get("db.system") == "redis"
    ]


async def test_a_product_read_is_one_trace_down_to_postgresql_and_redis(
    gateway: httpx.AsyncClient, issuer: TokenIssuer, spans: InMemorySpanExporter
) -> None:
    created = await gateway.post(
        "/api/v1/products",
        json={**PRODUCT, "sku": f"TEAPOT-{uuid.uuid4().hex[:6]}"},
        headers=issuer.bearer(roles=["admin"]),
    )
    assert created.status_code == 201, created.text
    await one_trace(spans, servers=2)
    spans.clear()
    # Not cached yet: Redis is asked, then PostgreSQL, then the entry is stored.
    read = await gateway.get(f"/api/v1/products/{created.json()['id']}")
    assert read.status_code == 200, read.text
    tree = await one_trace(spans, servers=2)
    print("\n" + "\n".join(tree.render()))
    below_orders = assert_edges_into(tree, "orders")
    (select,) = [s for s in database_spans(below_orders) if s.name.startswith("SELECT")]
    assert select.attributes is not None
    assert select.attributes["db.operation.name"] == "SELECT"
    assert "products" in str(select.attributes["db.query.text"])
    assert redis_spans(below_orders), "the cache lookup is a Redis span under orders"
    assert all(tree.service(s) == "orders" for s in below_orders)


async def test_a_sign_in_is_one_trace_down_to_postgresql_and_redis(
    gateway: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    email, password = f"ada-{uuid.uuid4().hex[:6]}@example.com", "a long enough secret"
    registered = await gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "Ada"}
    )
    assert registered.status_code == 201, registered.text
    await one_trace(spans, servers=2)  # the registration's spans, all ended, then gone
    spans.clear()
    token = await gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert token.status_code == 200, token.text
    tree = await one_trace(spans, servers=2)
    print("\n" + "\n".join(tree.render()))
    below_users = assert_edges_into(tree, "users")
    statements = database_spans(below_users)
    assert any(s.name.startswith("SELECT") for s in statements), [s.name for s in statements]
    assert any(s.name.startswith("INSERT") for s in statements), "the refresh token is stored"
    assert redis_spans(below_users), "the login throttle is a Redis span under users"
    assert all(tree.service(s) == "users" for s in below_users)


async def test_a_failed_statement_is_an_error_span(
    spans: InMemorySpanExporter, database_url: str
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ProgrammingError

    from shopstack_common.database import trace_statements
    from shopstack_common.settings import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url, "psycopg"))
    trace_statements(engine)
    try:
        with engine.connect() as connection, pytest.raises(ProgrammingError):
            connection.execute(text("SELECT * FROM no_such_table"))
    finally:
        engine.dispose()
    (failed,) = [
        s
        for s in spans.get_finished_spans()
        if "no_such_table" in str((s.attributes or {}).get("db.query.text"))
    ]
    assert not failed.status.is_ok
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "UndefinedTable"
    assert [event.name for event in failed.events] == ["exception"]
